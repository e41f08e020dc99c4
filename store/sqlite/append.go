package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/driver"
	"github.com/cqrskit/cqrskit/event"
)

// insertChunk bounds the rows of one multi-row INSERT, far below SQLite's
// limit of 32,766 bound parameters.
const insertChunk = 500

// Append appends events to stream in its own transaction, then wakes Listen
// subscribers. See event.Store.
//
// The store's appends queue in process for SQLite's single write lock, and
// each transaction begins IMMEDIATE (see Open), so concurrent appenders wait
// for their turn instead of failing with SQLITE_BUSY.
func (s *Store) Append(ctx context.Context, stream string, expected event.ExpectedVersion, events []event.Event) (event.AppendResult, error) {
	prepared, err := driver.PrepareAppend(stream, expected, events)
	if err != nil {
		return event.AppendResult{}, fmt.Errorf("append to stream %s: %w", stream, err)
	}
	if err := s.lockWrite(ctx); err != nil {
		return event.AppendResult{}, fmt.Errorf("append to stream %s: %w", stream, err)
	}
	defer s.unlockWrite()

	// Prepare before taking the transaction's connection. On failure (no
	// schema yet) append unprepared: that reports the actual problem.
	st, _ := s.prepare(ctx)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return event.AppendResult{}, fmt.Errorf("append to stream %s: begin: %w", stream, s.explain(ctx, s.db, s.q.eventsTable, err))
	}
	res, err := s.appendIn(ctx, tx, st, stream, expected, prepared)
	if err != nil {
		_ = tx.Rollback()
		return event.AppendResult{}, err
	}
	if err := tx.Commit(); err != nil {
		return event.AppendResult{}, fmt.Errorf("append to stream %s: commit: %w", stream, s.explain(ctx, s.db, s.q.eventsTable, err))
	}
	if len(res.Events) > 0 {
		s.Signal()
	}
	return res, nil
}

// Committed implements event.TxStore: it wakes the store's listeners
// (Listen), as Append does after its own commit. Call it after committing
// a transaction in which AppendTx wrote.
func (s *Store) Committed() { s.Signal() }

// AppendTx appends events to stream inside tx, with their outbox rows, so
// the caller's own writes in tx commit or roll back with them. See
// event.TxStore.
//
// Begin tx on DB() (whose transactions begin IMMEDIATE when the store was
// opened with Open). A failed AppendTx leaves nothing of the append in tx,
// and tx stays usable. After committing tx, call Committed to wake the relay.
func (s *Store) AppendTx(ctx context.Context, tx *sql.Tx, stream string, expected event.ExpectedVersion, events []event.Event) (event.AppendResult, error) {
	prepared, err := driver.PrepareAppend(stream, expected, events)
	if err != nil {
		return event.AppendResult{}, fmt.Errorf("append to stream %s: %w", stream, err)
	}
	if tx == nil {
		return event.AppendResult{}, fmt.Errorf("append to stream %s: %w", stream,
			&event.ValidationError{Field: "tx", Value: "nil", Reason: "AppendTx needs a transaction; use Append without one"})
	}
	// A failed statement undoes only itself in SQLite; the savepoint undoes
	// the whole append so a caller that commits anyway stores none of it.
	if _, err := tx.ExecContext(ctx, "SAVEPOINT cqrskit_append"); err != nil {
		return event.AppendResult{}, fmt.Errorf("append to stream %s: %w", stream, s.explain(ctx, tx, s.q.eventsTable, err))
	}
	// The caller holds a connection: use the statements only if they are
	// prepared already (Append and Migrate prepare them).
	res, err := s.appendIn(ctx, tx, s.prepared(), stream, expected, prepared)
	if err != nil {
		// Cleanup must run even when ctx is done; the caller still owns tx.
		cctx := context.WithoutCancel(ctx)
		if _, rerr := tx.ExecContext(cctx, "ROLLBACK TO cqrskit_append"); rerr == nil {
			_, _ = tx.ExecContext(cctx, "RELEASE cqrskit_append")
		}
		return event.AppendResult{}, err
	}
	if _, err := tx.ExecContext(ctx, "RELEASE cqrskit_append"); err != nil {
		return event.AppendResult{}, fmt.Errorf("append to stream %s: %w", stream, err)
	}
	return res, nil
}

// appendIn does the append in tx: skip stored IDs, check the version,
// insert events and outbox rows, move the stream's version.
// Statements st lacks are prepared anew.
func (s *Store) appendIn(ctx context.Context, tx *sql.Tx, st stmts, stream string, expected event.ExpectedVersion, events []event.Event) (event.AppendResult, error) {
	fail := func(step string, err error) (event.AppendResult, error) {
		return event.AppendResult{}, fmt.Errorf("append to stream %s: %s: %w", stream, step, s.explain(ctx, tx, s.q.eventsTable, err))
	}

	var current int64
	var stored map[uuid.UUID]driver.StoredAt
	if len(events) == 1 {
		// The common case in one statement: the version, and where the
		// event is stored if it is.
		var storedStream sql.NullString
		var storedVersion sql.NullInt64
		if err := queryRow(ctx, tx, st.head, s.q.head, stream, events[0].ID.String()).Scan(&current, &storedStream, &storedVersion); err != nil {
			return fail("read stream version", err)
		}
		if storedStream.Valid {
			stored = map[uuid.UUID]driver.StoredAt{events[0].ID: {Stream: storedStream.String, Version: storedVersion.Int64}}
		}
	} else {
		err := queryRow(ctx, tx, st.streamVer, s.q.streamVersion, stream).Scan(&current)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fail("read stream version", err)
		}
		if stored, err = s.storedIDs(ctx, tx, events); err != nil {
			return fail("look up event IDs", err)
		}
	}
	n := len(events)
	events, err := driver.SkipStored(stream, events, stored)
	if err != nil {
		return event.AppendResult{}, err
	}
	skipped := n - len(events)
	if len(events) == 0 {
		return event.AppendResult{Version: current, Skipped: skipped}, nil // an idempotent retry
	}

	if err := expected.Check(stream, current); err != nil {
		return event.AppendResult{}, err
	}

	now := time.Now().UnixNano()
	recordedAt := time.Unix(0, now).UTC()
	streamType := ""
	for i := range events {
		e := &events[i]
		e.Version = current + int64(i) + 1
		e.Position = 0
		e.TxID = 0
		e.RecordedAt = recordedAt
		if streamType == "" {
			streamType = e.StreamType
		}
	}

	for start := 0; start < len(events); start += insertChunk {
		chunk := events[start:min(start+insertChunk, len(events))]
		if err := s.insertEvents(ctx, tx, st, chunk, now); err != nil {
			if isUniqueViolation(err) {
				return event.AppendResult{}, s.conflict(ctx, tx, stream, expected, current)
			}
			return fail("insert events", err)
		}
	}

	last := events[len(events)-1].Version
	if _, err := exec(ctx, tx, st.upsertStream, s.q.upsertStream, stream, streamType, last); err != nil {
		return fail("update stream version", err)
	}
	return event.AppendResult{Version: last, Events: events, Skipped: skipped}, nil
}

// storedIDs returns where the events already in the store are.
func (s *Store) storedIDs(ctx context.Context, tx *sql.Tx, events []event.Event) (map[uuid.UUID]driver.StoredAt, error) {
	var stored map[uuid.UUID]driver.StoredAt
	for start := 0; start < len(events); start += insertChunk {
		chunk := events[start:min(start+insertChunk, len(events))]
		args := make([]any, len(chunk))
		for i, e := range chunk {
			args[i] = e.ID.String()
		}
		query := "SELECT id, stream_id, version FROM " + s.q.eventsTable + " WHERE id IN " + placeholders(1, len(chunk))
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			var at driver.StoredAt
			if err := rows.Scan(&id, &at.Stream, &at.Version); err != nil {
				rows.Close()
				return nil, err
			}
			uid, err := uuid.Parse(id)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("stored event ID %q: %w", id, err)
			}
			if stored == nil {
				stored = map[uuid.UUID]driver.StoredAt{}
			}
			stored[uid] = at
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return stored, nil
}

// insertEvents inserts chunk with one outbox row per event, setting each
// event's Position. Outbox rows follow stream order: the relay publishes in
// outbox ID order.
func (s *Store) insertEvents(ctx context.Context, tx *sql.Tx, st stmts, chunk []event.Event, now int64) error {
	const cols = 9
	args := make([]any, 0, len(chunk)*cols)
	for _, e := range chunk {
		md, err := json.Marshal(e.Metadata)
		if err != nil {
			return fmt.Errorf("encode metadata of event %s: %w", e.ID, err)
		}
		data := e.Data
		if len(data) == 0 {
			data = []byte{} // an empty payload, never NULL
		}
		args = append(args, e.ID.String(), e.StreamID, e.StreamType, e.Version, e.Type,
			e.SchemaVersion, data, string(md), now)
	}

	if len(chunk) == 1 {
		if err := queryRow(ctx, tx, st.insertEvent, s.q.insertEvents(1), args...).
			Scan(&chunk[0].Version, &chunk[0].Position); err != nil {
			return err
		}
		_, err := exec(ctx, tx, st.insertOutbox, s.q.insertOutbox(1), chunk[0].Position, now)
		return err
	}

	rows, err := tx.QueryContext(ctx, s.q.insertEvents(len(chunk)), args...)
	if err != nil {
		return err
	}
	first := chunk[0].Version
	n := 0
	for rows.Next() {
		var version, position int64
		if err := rows.Scan(&version, &position); err != nil {
			rows.Close()
			return err
		}
		i := version - first
		if i < 0 || i >= int64(len(chunk)) {
			rows.Close()
			return fmt.Errorf("insert returned version %d outside %d..%d", version, first, first+int64(len(chunk))-1)
		}
		chunk[i].Position = position
		n++
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if n != len(chunk) {
		return fmt.Errorf("insert returned %d rows for %d events", n, len(chunk))
	}

	args = args[:0]
	for _, e := range chunk {
		args = append(args, e.Position, now)
	}
	_, err = tx.ExecContext(ctx, s.q.insertOutbox(len(chunk)), args...)
	return err
}

// conflict turns a UNIQUE violation, which means another writer got there
// first, into the *event.ConcurrencyError callers branch on.
func (s *Store) conflict(ctx context.Context, tx *sql.Tx, stream string, expected event.ExpectedVersion, current int64) error {
	actual := current
	var v int64
	if err := tx.QueryRowContext(context.WithoutCancel(ctx), s.q.streamVersion, stream).Scan(&v); err == nil {
		actual = v
	}
	return &event.ConcurrencyError{Stream: stream, Expected: expected, Actual: actual}
}
