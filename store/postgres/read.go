package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"strconv"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cqrskit/cqrskit/driver"
	"github.com/cqrskit/cqrskit/event"
)

// loadBatchSize is how many events Load reads per query. Load holds no
// connection while the caller handles events.
const loadBatchSize = 1000

const eventColumns = `position, (tx_id::text)::bigint, id, stream_id, stream_type, version, type, schema_version, data, metadata, recorded_at`

const loadSQL = `SELECT ` + eventColumns + `
FROM {events}
WHERE stream_id = $1 AND version >= $2
ORDER BY version
LIMIT $3`

// horizonSubquery is the gap-safe horizon of every global read: the
// oldest transaction still running when the statement's snapshot was
// taken, else the snapshot's xmax. A row still to commit has a tx_id at or
// above it, so it sorts after everything read below it and a cursor never
// passes it.
//
// The horizon is pg_snapshot_xmin(pg_current_snapshot()), except that
// transactions seen running in another database are left out: they cannot
// write this database's events, and on a shared server they would
// otherwise hold every reader back. A transaction that cannot be placed (it
// ended meanwhile, or pg_stat_activity hides it from this role) still
// counts, so leaving out is never a guess.
//
// readAllSQL, countEventsSQL (checkpoint.go) and horizonOnlySQL
// (txid_check.go) use it; horizonSQL (horizon.go) lists its blockers by the
// same rule.
const horizonSubquery = `SELECT coalesce(min(x), pg_snapshot_xmax(pg_current_snapshot()))
	FROM pg_snapshot_xip(pg_current_snapshot()) AS x
	WHERE NOT EXISTS (
		SELECT 1 FROM pg_stat_activity a
		WHERE a.backend_xid = x::xid
		  AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database())
	)`

// globalReadWhere selects the events a global read returns after the
// cursor ($1 the transaction id, $2 the position): those below the
// horizon, after the cursor in (tx_id, position) order.
const globalReadWhere = `tx_id < (
	` + horizonSubquery + `
)
  AND (tx_id, position) > ($1::text::xid8, $2::bigint)`

// readAllSQL reads the rows of globalReadWhere in (tx_id, position) order.
const readAllSQL = `SELECT ` + eventColumns + `
FROM {events} AS ev
WHERE ` + globalReadWhere + `
ORDER BY ev.tx_id, ev.position -- qualified: the output column "tx_id" is a bigint cast, which no index orders
LIMIT $3`

// Load yields the stream's events with Version >= from, in order, reading
// them in batches. See event.Store.
func (s *Store) Load(ctx context.Context, stream string, from int64) iter.Seq2[event.Event, error] {
	if err := driver.ValidateLoad(stream, from); err != nil {
		return driver.ErrorSeq(err)
	}
	return func(yield func(event.Event, error) bool) {
		next := from
		// The events are yielded by value, so one page's slice serves all.
		var batch []event.Event
		var err error
		for first := true; ; first = false {
			batch, err = s.queryEvents(ctx, batch[:0], s.q.load, stream, next, loadBatchSize)
			if err != nil {
				yield(event.Event{}, wrap(fmt.Sprintf("load stream %s from version %d", stream, next), err))
				return
			}
			if first && len(batch) == 0 {
				var exists bool
				if err := s.db.QueryRowContext(ctx, s.q.streamExists, stream).Scan(&exists); err != nil {
					yield(event.Event{}, wrap("load stream "+stream, err))
				} else if !exists {
					yield(event.Event{}, driver.StreamNotFoundError(stream))
				}
				return
			}
			for _, e := range batch {
				if !yield(e, nil) {
					return
				}
			}
			if len(batch) < loadBatchSize {
				return
			}
			next = batch[len(batch)-1].Version + 1
		}
	}
}

// ReadAll returns up to limit events after the cursor in (TxID, Position)
// order, from transactions that every reader sees as committed. It never
// skips an event; an event of a transaction still running is returned by
// a later call. See event.Store.
func (s *Store) ReadAll(ctx context.Context, after event.Cursor, limit int) ([]event.Event, error) {
	if err := driver.ValidateReadAll(after, limit); err != nil {
		return nil, err
	}
	events, err := s.queryEvents(ctx, nil, s.q.readAll, strconv.FormatUint(after.TxID, 10), after.Position, limit)
	if err != nil {
		return nil, wrap(fmt.Sprintf("read all after (tx %d, position %d)", after.TxID, after.Position), err)
	}
	if len(events) < limit {
		s.horizon.check(ctx) // horizon.go: warns when a long transaction holds readers back
	}
	return events, nil
}

// queryEvents runs a query of eventColumns and appends its events to buf.
// On pgx's stdlib driver it reads the rows through pgx itself: database/sql
// would box every column of every row into a driver.Value and copy it
// again into the destination, which costs more than the query.
func (s *Store) queryEvents(ctx context.Context, buf []event.Event, query string, args ...any) ([]event.Event, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	native := false
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(interface{ Conn() *pgx.Conn })
		if !ok {
			return nil
		}
		native = true
		buf, err = queryEventsPgx(ctx, c.Conn(), buf, query, args...)
		return err
	})
	if native || err != nil {
		return buf, err
	}
	rows, err := conn.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		buf = append(buf, e)
	}
	return buf, rows.Err()
}

// queryEventsPgx is queryEvents on a pgx connection. The text columns come
// raw and repeat from row to row (a stream's ID and type, a few event
// types), so a value equal to the previous row's reuses its string.
func queryEventsPgx(ctx context.Context, conn *pgx.Conn, buf []event.Event, query string, args ...any) ([]event.Event, error) {
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	fields := rows.FieldDescriptions()
	if len(fields) != 11 {
		return nil, fmt.Errorf("event query returned %d columns, want 11", len(fields))
	}
	var streamID, streamType string
	types := make([]string, 0, 4)
	for rows.Next() {
		var (
			e    event.Event
			txID int64
			id   pgtype.UUID
		)
		// nil skips a column: the text and JSON columns are read raw below.
		if err := rows.Scan(&e.Position, &txID, &id, nil, nil, &e.Version, nil, &e.SchemaVersion, &e.Data, nil, &e.RecordedAt); err != nil {
			return nil, err
		}
		raw := rows.RawValues()
		if !id.Valid {
			return nil, fmt.Errorf("event at position %d has a NULL id", e.Position)
		}
		e.ID = uuid.UUID(id.Bytes)
		e.TxID = uint64(txID)
		e.RecordedAt = e.RecordedAt.UTC()
		streamID = reuse(streamID, raw[3])
		streamType = reuse(streamType, raw[4])
		e.StreamID, e.StreamType = streamID, streamType
		e.Type = intern(&types, raw[6])
		md := raw[9]
		if fields[9].Format == pgx.BinaryFormatCode && len(md) > 0 {
			if md[0] != 1 {
				return nil, fmt.Errorf("decode metadata of event %s: unknown jsonb binary version %d", e.ID, md[0])
			}
			md = md[1:]
		}
		if err := decodeMetadata(md, &e.Metadata); err != nil {
			return nil, fmt.Errorf("decode metadata of event %s: %w", e.ID, err)
		}
		buf = append(buf, e)
	}
	return buf, rows.Err()
}

// reuse returns prev when b holds the same text, else b as a new string.
func reuse(prev string, b []byte) string {
	if string(b) == prev {
		return prev
	}
	return string(b)
}

// intern returns the string of b from seen, adding it when new; seen stays
// small (the event types of one page), so a linear scan is the fastest.
func intern(seen *[]string, b []byte) string {
	for _, s := range *seen {
		if s == string(b) {
			return s
		}
	}
	s := string(b)
	if len(*seen) < 32 {
		*seen = append(*seen, s)
	}
	return s
}

// scanEvent scans eventColumns, optionally preceded by extra destinations.
func scanEvent(rows *sql.Rows, extra ...any) (event.Event, error) {
	var (
		e        event.Event
		txID     int64
		metadata sql.RawBytes
	)
	dest := append(extra, &e.Position, &txID, &e.ID, &e.StreamID, &e.StreamType, &e.Version,
		&e.Type, &e.SchemaVersion, &e.Data, &metadata, &e.RecordedAt)
	if err := rows.Scan(dest...); err != nil {
		return event.Event{}, err
	}
	e.TxID = uint64(txID)
	e.RecordedAt = e.RecordedAt.UTC()
	if err := decodeMetadata(metadata, &e.Metadata); err != nil {
		return event.Event{}, fmt.Errorf("decode metadata of event %s: %w", e.ID, err)
	}
	return e, nil
}
