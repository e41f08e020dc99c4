package sqlite

import (
	"context"
	"fmt"
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
	if err := s.db.QueryRowContext(ctx, s.q.outboxStats).Scan(&st.Backlog, &oldest); err != nil {
		return outbox.Stats{}, fmt.Errorf("outbox stats: %w", s.explain(ctx, s.db, s.q.outboxTable, err))
	}
	if st.Backlog > 0 {
		st.OldestAt = time.Unix(0, oldest).UTC()
	}
	return st, nil
}
