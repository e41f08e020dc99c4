package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/cqrskit/cqrskit/outbox"
)

// Pending returns up to limit unpublished outbox records in ID order, each
// with its event.
func (s *Store) Pending(ctx context.Context, limit int) ([]outbox.Record, error) {
	if limit < 1 {
		return nil, fmt.Errorf("outbox pending: limit %d: must be >= 1", limit)
	}
	rows, err := s.db.QueryContext(ctx, s.q.pending, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox pending: %w", s.explain(ctx, s.db, s.q.outboxTable, err))
	}
	defer rows.Close()
	var out []outbox.Record
	for rows.Next() {
		var r outbox.Record
		if r.Event, err = scanEvent(rows.Scan, &r.ID); err != nil {
			return nil, fmt.Errorf("outbox pending: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox pending: %w", err)
	}
	return out, nil
}

// Delete removes published records. Unknown IDs are ignored.
func (s *Store) Delete(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if err := s.lockWrite(ctx); err != nil {
		return fmt.Errorf("outbox delete: %w", err)
	}
	defer s.unlockWrite()
	// One transaction for all chunks: one commit, and all or nothing.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("outbox delete: %w", s.explain(ctx, s.db, s.q.outboxTable, err))
	}
	defer tx.Rollback()
	for start := 0; start < len(ids); start += insertChunk {
		chunk := ids[start:min(start+insertChunk, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+s.q.outboxTable+" WHERE id IN "+placeholders(1, len(chunk)), args...); err != nil {
			return fmt.Errorf("outbox delete %d records: %w", len(ids), s.explain(ctx, tx, s.q.outboxTable, err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("outbox delete %d records: commit: %w", len(ids), err)
	}
	return nil
}

// Stats returns the backlog size and when its oldest row was written.
func (s *Store) Stats(ctx context.Context) (outbox.Stats, error) {
	var (
		st     outbox.Stats
		oldest int64
	)
	if err := s.db.QueryRowContext(ctx, s.q.outboxStats).Scan(&st.Backlog, &oldest, &st.Parked); err != nil {
		return outbox.Stats{}, fmt.Errorf("outbox stats: %w", s.explain(ctx, s.db, s.q.outboxTable, err))
	}
	if st.Backlog > 0 {
		st.OldestAt = time.Unix(0, oldest).UTC()
	}
	return st, nil
}

var _ outbox.ParkedStore = (*Store)(nil)

// Park moves an outbox record the broker rejected for good into the
// parked records, with reason, in one transaction. See outbox.Store.
func (s *Store) Park(ctx context.Context, id int64, reason string) error {
	return s.outboxTx(ctx, fmt.Sprintf("park outbox record %d", id), func(tx *sql.Tx) (int, error) {
		res, err := tx.ExecContext(ctx, s.adminSQL(`INSERT INTO {p}outbox_parked
			(id, event_position, stream_id, created_at, reason, parked_at)
			SELECT o.id, o.event_position, e.stream_id, o.created_at, ?, ?
			FROM {p}outbox o JOIN {p}events e ON e.position = o.event_position WHERE o.id = ?`),
			reason, time.Now().UnixNano(), id)
		if err != nil {
			return 0, err
		}
		_, err = tx.ExecContext(ctx, s.adminSQL(`DELETE FROM {p}outbox WHERE id = ?`), id)
		n, _ := res.RowsAffected()
		return int(n), err
	})
}

// Parked lists parked records with an ID above after. See
// outbox.ParkedStore.
func (s *Store) Parked(ctx context.Context, after int64, limit int) ([]outbox.ParkedRecord, error) {
	if limit < 1 {
		return nil, fmt.Errorf("list parked outbox records: limit %d: must be >= 1", limit)
	}
	rows, err := s.db.QueryContext(ctx, s.adminSQL(`SELECT p.id, p.reason, p.parked_at, `+prefixed("e.", eventColumns)+`
		FROM {p}outbox_parked p JOIN {p}events e ON e.position = p.event_position
		WHERE p.id > ? ORDER BY p.id LIMIT ?`), after, limit)
	if err != nil {
		return nil, fmt.Errorf("list parked outbox records: %w", s.explain(ctx, s.db, s.prefix+"outbox_parked", err))
	}
	defer rows.Close()
	var out []outbox.ParkedRecord
	for rows.Next() {
		var (
			p        outbox.ParkedRecord
			parkedAt int64
		)
		if p.Event, err = scanEvent(rows.Scan, &p.ID, &p.Reason, &parkedAt); err != nil {
			return nil, fmt.Errorf("list parked outbox records: %w", err)
		}
		p.ParkedAt = time.Unix(0, parkedAt).UTC()
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list parked outbox records: %w", err)
	}
	return out, nil
}

// RetryParked moves parked records back into the outbox under their IDs
// and wakes the relays. See outbox.ParkedStore.
func (s *Store) RetryParked(ctx context.Context, ids []int64) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + ")"
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	n := 0
	err := s.outboxTx(ctx, "retry parked outbox records", func(tx *sql.Tx) (int, error) {
		res, err := tx.ExecContext(ctx, s.adminSQL(`INSERT INTO {p}outbox (id, event_position, created_at)
			SELECT id, event_position, created_at FROM {p}outbox_parked WHERE id IN `+in), args...)
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, s.adminSQL(`DELETE FROM {p}outbox_parked WHERE id IN `+in), args...); err != nil {
			return 0, err
		}
		m, err := res.RowsAffected()
		n = int(m)
		return n, err
	})
	if err == nil && n > 0 {
		s.Signal()
	}
	return n, err
}

// DiscardParked deletes parked records: their events are never published,
// and their streams' later records flow again. See outbox.ParkedStore.
func (s *Store) DiscardParked(ctx context.Context, ids []int64) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + ")"
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	n, err := s.execWrite(ctx, s.adminSQL(`DELETE FROM {p}outbox_parked WHERE id IN `+in), args...)
	if err != nil {
		return 0, fmt.Errorf("discard parked outbox records: %w", s.explain(ctx, s.db, s.prefix+"outbox_parked", err))
	}
	if n > 0 {
		s.Signal()
	}
	return int(n), nil
}

// outboxTx runs fn in a write transaction under the store's write lock.
func (s *Store) outboxTx(ctx context.Context, what string, fn func(tx *sql.Tx) (int, error)) error {
	if err := s.lockWrite(ctx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer s.unlockWrite()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, s.explain(ctx, s.db, s.q.outboxTable, err))
	}
	defer tx.Rollback()
	if _, err := fn(tx); err != nil {
		return fmt.Errorf("%s: %w", what, s.explain(ctx, tx, s.prefix+"outbox_parked", err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}
