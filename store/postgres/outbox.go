package postgres

import (
	"context"
	"database/sql"
	"strconv"
	"strings"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/outbox"
)

var _ outbox.ParkedStore = (*Store)(nil)

// outboxQueries holds the outbox's SQL with table names filled in.
type outboxQueries struct {
	pending, deleteOutbox, stats             string
	park, parked, retryParked, discardParked string
}

// pendingSQL reads the head of the outbox, leaving out every row of a
// stream that has a parked row: those wait behind it. While nothing is
// parked the anti-join costs one probe of an empty index per row.
const pendingSQL = `SELECT o.id, e.position, (e.tx_id::text)::bigint, e.id, e.stream_id, e.stream_type, e.version,
	e.type, e.schema_version, e.data, e.metadata, e.recorded_at
FROM {outbox} o
JOIN {events} e ON e.position = o.event_position
WHERE NOT EXISTS (SELECT 1 FROM {outbox_parked} p WHERE p.stream_id = e.stream_id)
ORDER BY o.id
LIMIT $1`

func newOutboxQueries(cfg Config) outboxQueries {
	d := cfg.templateData()
	r := strings.NewReplacer(
		"{events}", d.Q+d.Prefix+"events",
		"{outbox}", d.Q+d.Prefix+"outbox",
		"{outbox_parked}", d.Q+d.Prefix+"outbox_parked",
	)
	return outboxQueries{
		pending:      r.Replace(pendingSQL),
		deleteOutbox: r.Replace(`DELETE FROM {outbox} WHERE id = ANY($1::bigint[])`),
		stats:        r.Replace(`SELECT count(*), min(created_at), (SELECT count(*) FROM {outbox_parked}) FROM {outbox}`),
		// One statement: the row is in the outbox or parked, never both
		// or neither.
		park: r.Replace(`WITH moved AS (DELETE FROM {outbox} WHERE id = $1 RETURNING id, event_position, created_at)
INSERT INTO {outbox_parked} (id, event_position, stream_id, created_at, reason)
SELECT m.id, m.event_position, e.stream_id, m.created_at, $2
FROM moved m JOIN {events} e ON e.position = m.event_position`),
		parked: r.Replace(`SELECT p.id, p.reason, p.parked_at, e.position, (e.tx_id::text)::bigint, e.id, e.stream_id,
	e.stream_type, e.version, e.type, e.schema_version, e.data, e.metadata, e.recorded_at
FROM {outbox_parked} p
JOIN {events} e ON e.position = p.event_position
WHERE p.id > $1
ORDER BY p.id
LIMIT $2`),
		retryParked: r.Replace(`WITH moved AS (DELETE FROM {outbox_parked} WHERE id = ANY($1::bigint[]) RETURNING id, event_position, created_at)
INSERT INTO {outbox} (id, event_position, created_at) OVERRIDING SYSTEM VALUE
SELECT id, event_position, created_at FROM moved`),
		discardParked: r.Replace(`DELETE FROM {outbox_parked} WHERE id = ANY($1::bigint[])`),
	}
}

// Pending returns up to limit unpublished records in ID order, each with
// its event, leaving out the streams held back by a parked record. See
// outbox.Store.
func (s *Store) Pending(ctx context.Context, limit int) ([]outbox.Record, error) {
	if limit < 1 {
		return nil, &event.ValidationError{Field: "limit", Value: strconv.Itoa(limit), Reason: "limit must be >= 1"}
	}
	rows, err := s.db.QueryContext(ctx, s.q.outbox.pending, limit)
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
	if _, err := s.db.ExecContext(ctx, s.q.outbox.deleteOutbox, ids); err != nil {
		return wrap("delete "+strconv.Itoa(len(ids))+" published outbox records", err)
	}
	return nil
}

// Park moves an outbox record the broker rejected for good into the
// parked records, with reason. See outbox.Store.
func (s *Store) Park(ctx context.Context, id int64, reason string) error {
	if _, err := s.db.ExecContext(ctx, s.q.outbox.park, id, reason); err != nil {
		return wrap("park outbox record "+strconv.FormatInt(id, 10), err)
	}
	return nil
}

// Parked lists parked records with an ID above after. See
// outbox.ParkedStore.
func (s *Store) Parked(ctx context.Context, after int64, limit int) ([]outbox.ParkedRecord, error) {
	if limit < 1 {
		return nil, &event.ValidationError{Field: "limit", Value: strconv.Itoa(limit), Reason: "limit must be >= 1"}
	}
	rows, err := s.db.QueryContext(ctx, s.q.outbox.parked, after, limit)
	if err != nil {
		return nil, wrap("list parked outbox records", err)
	}
	defer rows.Close()
	var out []outbox.ParkedRecord
	for rows.Next() {
		var p outbox.ParkedRecord
		if p.Event, err = scanEvent(rows, &p.ID, &p.Reason, &p.ParkedAt); err != nil {
			return nil, wrap("list parked outbox records", err)
		}
		p.ParkedAt = p.ParkedAt.UTC()
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list parked outbox records", err)
	}
	return out, nil
}

// RetryParked moves parked records back into the outbox under their IDs;
// the insert notifies waiting relays. See outbox.ParkedStore.
func (s *Store) RetryParked(ctx context.Context, ids []int64) (int, error) {
	return s.execCount(ctx, s.q.outbox.retryParked, "retry parked outbox records", ids)
}

// DiscardParked deletes parked records: their events are never published.
// See outbox.ParkedStore.
func (s *Store) DiscardParked(ctx context.Context, ids []int64) (int, error) {
	return s.execCount(ctx, s.q.outbox.discardParked, "discard parked outbox records", ids)
}

func (s *Store) execCount(ctx context.Context, query, what string, ids []int64) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	res, err := s.db.ExecContext(ctx, query, ids)
	if err != nil {
		return 0, wrap(what, err)
	}
	n, err := res.RowsAffected()
	return int(n), wrap(what, err)
}

// Stats returns the backlog size, when its oldest row was written and how
// many rows are parked. See outbox.Store.
func (s *Store) Stats(ctx context.Context) (outbox.Stats, error) {
	var st outbox.Stats
	var oldest sql.NullTime
	if err := s.db.QueryRowContext(ctx, s.q.outbox.stats).Scan(&st.Backlog, &oldest, &st.Parked); err != nil {
		return outbox.Stats{}, wrap("outbox stats", err)
	}
	if oldest.Valid {
		st.OldestAt = oldest.Time.UTC()
	}
	return st, nil
}
