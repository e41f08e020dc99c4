package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/driver"
	"github.com/cqrskit/cqrskit/event"
)

// The append is one statement: a compare-and-set on the stream row (which
// also takes the row lock and refuses event IDs already stored), then the
// events and their outbox rows, inserted only if the compare-and-set
// returned a row. A failed check inserts nothing and draws no position. A
// statement is atomic on its own, so Append needs no explicit transaction:
// one round trip per append on the fast path.
//
// Parameters: $1 stream, $2 stream type, $3 number of events, $4..$9 the
// event columns as arrays, $10 the expected version (Exactly only).

const noneStored = `NOT EXISTS (SELECT 1 FROM {events} WHERE id = ANY($4::uuid[]))`

const (
	casAny = `INSERT INTO {streams} AS st (stream_id, stream_type, version, last_tx_id)
	SELECT $1, $2::text, $3::bigint, pg_current_xact_id() WHERE ` + noneStored + `
	ON CONFLICT (stream_id) DO UPDATE SET version = st.version + EXCLUDED.version,
		last_tx_id = greatest(st.last_tx_id, EXCLUDED.last_tx_id)
	RETURNING st.version - $3::bigint AS base, st.last_tx_id AS tx`

	casNoStream = `INSERT INTO {streams} (stream_id, stream_type, version, last_tx_id)
	SELECT $1, $2::text, $3::bigint, pg_current_xact_id() WHERE ` + noneStored + `
	ON CONFLICT (stream_id) DO NOTHING
	RETURNING 0::bigint AS base, last_tx_id AS tx`

	casStreamExists = `UPDATE {streams} SET version = version + $3::bigint,
		stream_type = coalesce(nullif(stream_type, ''), $2::text),
		last_tx_id = greatest(last_tx_id, pg_current_xact_id())
	WHERE stream_id = $1 AND ` + noneStored + `
	RETURNING version - $3::bigint AS base, last_tx_id AS tx`

	casExactly = `UPDATE {streams} SET version = version + $3::bigint,
		stream_type = coalesce(nullif(stream_type, ''), $2::text),
		last_tx_id = greatest(last_tx_id, pg_current_xact_id())
	WHERE stream_id = $1 AND version = $10::bigint AND ` + noneStored + `
	RETURNING version - $3::bigint AS base, last_tx_id AS tx`
)

func appendSQL(cas string) string {
	return `WITH s AS (
	` + cas + `
), e AS (
	INSERT INTO {events} (tx_id, id, stream_id, stream_type, version, type, schema_version, data, metadata)
	SELECT s.tx, u.id, $1, u.stream_type, s.base + u.ord, u.type, u.schema_version, u.data, u.metadata
	FROM s, unnest($4::uuid[], $5::text[], $6::text[], $7::integer[], $8::bytea[], $9::jsonb[])
		WITH ORDINALITY AS u (id, stream_type, type, schema_version, data, metadata, ord)
	ORDER BY u.ord
	RETURNING position, tx_id, version, recorded_at
), o AS (
	INSERT INTO {outbox} (event_position) SELECT position FROM e ORDER BY position
)
SELECT position, (tx_id::text)::bigint, version, recorded_at FROM e ORDER BY version`
}

// diagnoseSQL runs only when the fast path inserted nothing: the stream's
// version and where the events already stored are.
const diagnoseSQL = `SELECT
	coalesce((SELECT version FROM {streams} WHERE stream_id = $1), 0),
	coalesce((SELECT json_agg(json_build_object('id', id, 'stream', stream_id, 'version', version))
		FROM {events} WHERE id = ANY($2::uuid[])), '[]')`

// maxAppendAttempts bounds the retries of an append that lost a race.
const maxAppendAttempts = 5

// Append appends events to stream in their own transaction. See
// event.Store.
func (s *Store) Append(ctx context.Context, stream string, expected event.ExpectedVersion, events []event.Event) (event.AppendResult, error) {
	return s.append(ctx, s.db, false, stream, expected, events)
}

// Committed implements event.TxStore. It does nothing: the commit of a
// transaction with outbox rows notifies the listeners by itself (see
// Listener).
func (s *Store) Committed() {}

// AppendTx appends events inside tx, so the caller's own writes commit or
// roll back with the events and their outbox rows. The caller commits.
//
// If AppendTx returns an error caused by the database, tx may be aborted
// by PostgreSQL and should be rolled back. A conflict found before writing
// (the usual case) leaves tx usable.
func (s *Store) AppendTx(ctx context.Context, tx *sql.Tx, stream string, expected event.ExpectedVersion, events []event.Event) (event.AppendResult, error) {
	if tx == nil {
		return event.AppendResult{}, &event.ValidationError{Field: "tx", Value: "nil", Reason: "AppendTx needs a transaction; use Append without one"}
	}
	return s.append(ctx, tx, true, stream, expected, events)
}

func (s *Store) append(ctx context.Context, q querier, inTx bool, stream string, expected event.ExpectedVersion, events []event.Event) (event.AppendResult, error) {
	events, err := driver.PrepareAppend(stream, expected, events)
	if err != nil {
		return event.AppendResult{}, err
	}
	op := "append to stream " + stream
	if n, ok := expected.Exact(); ok {
		op += " at version " + strconv.FormatInt(n, 10)
	}

	var conflict error
	skipped := 0
	for range maxAppendAttempts {
		stored, err := s.tryAppend(ctx, q, stream, expected, events)
		if err == nil && len(stored) > 0 {
			return event.AppendResult{Version: stored[len(stored)-1].Version, Events: stored, Skipped: skipped}, nil
		}
		if err != nil {
			switch uniqueViolation(err) {
			case s.cfg.TablePrefix + "events_id_key":
				// Another transaction stored one of these IDs after this
				// statement's snapshot was taken. Our own statement has
				// failed, so nothing of ours is stored: retry and let the
				// duplicate check see it. A caller's transaction is
				// aborted, so report a conflict instead; its retry will
				// find the IDs stored and succeed.
				if !inTx {
					continue
				}
				return event.AppendResult{}, s.conflictAfterAbort(ctx, op, stream, expected)
			case s.cfg.TablePrefix + "events_stream_version_key":
				return event.AppendResult{}, s.conflictAfterAbort(ctx, op, stream, expected)
			}
			return event.AppendResult{}, wrap(op, err)
		}

		// Slow path: nothing was inserted. Find out why.
		current, dups, err := s.diagnose(ctx, q, stream, events)
		if err != nil {
			return event.AppendResult{}, wrap(op, err)
		}
		if len(dups) > 0 {
			fresh, err := driver.SkipStored(stream, events, dups)
			if err != nil {
				return event.AppendResult{}, err
			}
			skipped += len(events) - len(fresh)
			if len(fresh) == 0 {
				return event.AppendResult{Version: current, Skipped: skipped}, nil // an idempotent retry
			}
			events = fresh
			continue
		}
		if conflict = expected.Check(stream, current); conflict != nil {
			return event.AppendResult{}, conflict
		}
		// The stream changed between the two statements; try again.
	}
	if conflict == nil {
		current, _, err := s.diagnose(ctx, q, stream, nil)
		if err != nil {
			return event.AppendResult{}, wrap(op, err)
		}
		conflict = &event.ConcurrencyError{Stream: stream, Expected: expected, Actual: current}
	}
	return event.AppendResult{}, conflict
}

// tryAppend runs the one-statement append. It returns the stored events,
// or none when the compare-and-set failed.
func (s *Store) tryAppend(ctx context.Context, q querier, stream string, expected event.ExpectedVersion, events []event.Event) ([]event.Event, error) {
	n := len(events)
	ids := make([]uuid.UUID, n)
	streamTypes := make([]string, n)
	types := make([]string, n)
	schemaVersions := make([]int32, n)
	data := make([][]byte, n)
	metadata := make([]string, n)
	for i, e := range events {
		ids[i], streamTypes[i], types[i], data[i] = e.ID, e.StreamType, e.Type, e.Data
		schemaVersions[i] = int32(e.SchemaVersion)
		md, err := encodeMetadata(e.Metadata)
		if err != nil {
			return nil, fmt.Errorf("encode metadata of events[%d]: %w", i, err)
		}
		metadata[i] = md
	}
	args := []any{stream, events[0].StreamType, int64(n), ids, streamTypes, types, schemaVersions, data, metadata}
	var query string
	switch {
	case expected.IsAny():
		query = s.q.appendAny
	case expected.IsNoStream():
		query = s.q.appendNoStream
	case expected.IsStreamExists():
		query = s.q.appendStreamExists
	default:
		v, _ := expected.Exact()
		query = s.q.appendExactly
		args = append(args, v)
	}

	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var stored []event.Event
	for i := 0; rows.Next(); i++ {
		if i >= n {
			return nil, errors.New("append returned more rows than events")
		}
		e := events[i]
		var txID int64
		if err := rows.Scan(&e.Position, &txID, &e.Version, &e.RecordedAt); err != nil {
			return nil, err
		}
		e.TxID = uint64(txID)
		e.RecordedAt = e.RecordedAt.UTC()
		stored = append(stored, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(stored) != 0 && len(stored) != n {
		return nil, fmt.Errorf("append stored %d of %d events", len(stored), n)
	}
	return stored, nil
}

// diagnose returns the stream's version and where the events already
// stored are.
func (s *Store) diagnose(ctx context.Context, q querier, stream string, events []event.Event) (int64, map[uuid.UUID]driver.StoredAt, error) {
	ids := make([]uuid.UUID, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	var current int64
	var list []byte
	if err := q.QueryRowContext(ctx, s.q.diagnose, stream, ids).Scan(&current, &list); err != nil {
		return 0, nil, err
	}
	var rows []struct {
		ID      uuid.UUID `json:"id"`
		Stream  string    `json:"stream"`
		Version int64     `json:"version"`
	}
	if err := json.Unmarshal(list, &rows); err != nil {
		return 0, nil, fmt.Errorf("decode stored event IDs: %w", err)
	}
	dups := make(map[uuid.UUID]driver.StoredAt, len(rows))
	for _, r := range rows {
		dups[r.ID] = driver.StoredAt{Stream: r.Stream, Version: r.Version}
	}
	return current, dups, nil
}

// conflictAfterAbort builds the conflict for a statement that hit a unique
// constraint. The statement (and a caller's transaction) failed, so the
// stream's version is read on a fresh connection.
func (s *Store) conflictAfterAbort(ctx context.Context, op string, stream string, expected event.ExpectedVersion) error {
	var current int64
	if err := s.db.QueryRowContext(ctx, s.q.streamVersion, stream).Scan(&current); err != nil {
		return wrap(op, fmt.Errorf("a concurrent append won, and reading the stream's version failed: %w", err))
	}
	return &event.ConcurrencyError{Stream: stream, Expected: expected, Actual: current}
}

func encodeMetadata(m event.Metadata) (string, error) {
	if m.CorrelationID == "" && m.CausationID == "" && m.TraceParent == "" && m.TraceState == "" && len(m.Extra) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

func decodeMetadata(b []byte, m *event.Metadata) error {
	if len(b) == 0 || string(b) == "{}" {
		return nil
	}
	return json.Unmarshal(b, m)
}
