package postgres

import (
	"context"
	"database/sql"
	"strconv"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/outbox"
)

const pendingSQL = `SELECT o.id, e.position, (e.tx_id::text)::bigint, e.id, e.stream_id, e.stream_type, e.version,
	e.type, e.schema_version, e.data, e.metadata, e.recorded_at
FROM {outbox} o
JOIN {events} e ON e.position = o.event_position
ORDER BY o.id
LIMIT $1`

// Pending returns up to limit unpublished records in ID order, each with
// its event. See outbox.Store.
func (s *Store) Pending(ctx context.Context, limit int) ([]outbox.Record, error) {
	if limit < 1 {
		return nil, &event.ValidationError{Field: "limit", Value: strconv.Itoa(limit), Reason: "limit must be >= 1"}
	}
	rows, err := s.db.QueryContext(ctx, s.q.pending, limit)
	if err != nil {
		return nil, wrap("read pending outbox records", err)
	}
	defer rows.Close()
	var records []outbox.Record
	for rows.Next() {
		var r outbox.Record
		if r.Event, err = scanEvent(rows, &r.ID); err != nil {
			return nil, wrap("read pending outbox records", err)
		}
		records = append(records, r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("read pending outbox records", err)
	}
	return records, nil
}

// Delete removes published records; unknown IDs are ignored. See
// outbox.Store.
func (s *Store) Delete(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, s.q.deleteOutbox, ids); err != nil {
		return wrap("delete "+strconv.Itoa(len(ids))+" published outbox records", err)
	}
	return nil
}

// Stats returns the backlog size and when its oldest row was written. See
// outbox.Store.
func (s *Store) Stats(ctx context.Context) (outbox.Stats, error) {
	var st outbox.Stats
	var oldest sql.NullTime
	if err := s.db.QueryRowContext(ctx, s.q.outboxStats).Scan(&st.Backlog, &oldest); err != nil {
		return outbox.Stats{}, wrap("outbox stats", err)
	}
	if oldest.Valid {
		st.OldestAt = oldest.Time.UTC()
	}
	return st, nil
}
