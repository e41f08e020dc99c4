package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"iter"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/driver"
	"github.com/cqrskit/cqrskit/event"
)

// loadPageSize is how many events Load reads per query. Load holds no
// transaction between pages, so a long stream never pins the WAL.
const loadPageSize = 1000

// Load yields the stream's events with Version >= from, in order, reading
// them in pages. A stream without events yields an error satisfying
// errors.Is(err, event.ErrStreamNotFound); a stream whose last version is
// below from yields nothing.
func (s *Store) Load(ctx context.Context, stream string, from int64) iter.Seq2[event.Event, error] {
	if err := driver.ValidateLoad(stream, from); err != nil {
		return driver.ErrorSeq(fmt.Errorf("load stream %s: %w", stream, err))
	}
	return func(yield func(event.Event, error) bool) {
		first := true
		// The events are yielded by value, so one page's slice serves all.
		var page []event.Event
		var err error
		for {
			page, err = s.loadPage(ctx, page[:0], stream, from)
			if err != nil {
				yield(event.Event{}, fmt.Errorf("load stream %s from version %d: %w", stream, from, err))
				return
			}
			if first && len(page) == 0 {
				var exists bool
				if err := s.db.QueryRowContext(ctx, s.q.streamExists, stream).Scan(&exists); err != nil {
					yield(event.Event{}, fmt.Errorf("load stream %s: %w", stream, s.explain(ctx, s.db, s.q.eventsTable, err)))
					return
				}
				if !exists {
					yield(event.Event{}, driver.StreamNotFoundError(stream))
				}
				return
			}
			first = false
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
			}
			if len(page) < loadPageSize {
				return
			}
			from = page[len(page)-1].Version + 1
		}
	}
}

// loadPage appends the page of stream's events from version from to buf.
func (s *Store) loadPage(ctx context.Context, buf []event.Event, stream string, from int64) ([]event.Event, error) {
	rows, err := s.db.QueryContext(ctx, s.q.loadPage, stream, from, loadPageSize)
	if err != nil {
		return nil, s.explain(ctx, s.db, s.q.eventsTable, err)
	}
	defer rows.Close()
	var sc pageScanner
	for rows.Next() {
		var (
			e          event.Event
			recordedAt int64
		)
		if err := rows.Scan(&e.Position, &sc.id, &sc.streamType, &e.Version, &sc.typ,
			&e.SchemaVersion, &e.Data, &sc.md, &recordedAt); err != nil {
			return nil, err
		}
		e.StreamID = stream
		if err := sc.finish(&e, recordedAt); err != nil {
			return nil, err
		}
		buf = append(buf, e)
	}
	return buf, rows.Err()
}

// pageScanner holds the raw text columns of one row. A stream's type and
// its few event types repeat from row to row, so a value equal to one seen
// before reuses its string.
type pageScanner struct {
	id, streamType, typ, md sql.RawBytes

	lastStreamType string
	types          []string
}

// finish fills e's text columns from the scanned row.
func (sc *pageScanner) finish(e *event.Event, recordedAt int64) error {
	var err error
	if e.ID, err = uuid.ParseBytes(sc.id); err != nil {
		return fmt.Errorf("event at position %d: stored ID %q: %w", e.Position, sc.id, err)
	}
	if string(sc.streamType) != sc.lastStreamType {
		sc.lastStreamType = string(sc.streamType)
	}
	e.StreamType = sc.lastStreamType
	e.Type = ""
	for _, t := range sc.types {
		if t == string(sc.typ) {
			e.Type = t
			break
		}
	}
	if e.Type == "" && len(sc.typ) > 0 {
		e.Type = string(sc.typ)
		if len(sc.types) < 32 {
			sc.types = append(sc.types, e.Type)
		}
	}
	if err := decodeMetadata(sc.md, &e.Metadata); err != nil {
		return fmt.Errorf("event %s: stored metadata: %w", e.ID, err)
	}
	if e.Data == nil {
		e.Data = []byte{}
	}
	e.RecordedAt = time.Unix(0, recordedAt).UTC()
	return nil
}

// decodeMetadata decodes stored metadata; "{}", what an event without
// metadata stores, needs no JSON decoder.
func decodeMetadata(b []byte, m *event.Metadata) error {
	if string(b) == "{}" {
		return nil
	}
	return json.Unmarshal(b, m)
}

// ReadAll returns up to limit events after the cursor in position order.
// SQLite commits one writer at a time, in position order, so reading past
// the last position never skips an event; TxID is always 0 and only the
// cursor's Position is used.
func (s *Store) ReadAll(ctx context.Context, after event.Cursor, limit int) ([]event.Event, error) {
	if err := driver.ValidateReadAll(after, limit); err != nil {
		return nil, fmt.Errorf("read all: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, s.q.readAll, after.Position, limit)
	if err != nil {
		return nil, fmt.Errorf("read all after position %d: %w", after.Position, s.explain(ctx, s.db, s.q.eventsTable, err))
	}
	defer rows.Close()
	var out []event.Event
	for rows.Next() {
		e, err := scanEvent(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("read all after position %d: %w", after.Position, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read all after position %d: %w", after.Position, err)
	}
	return out, nil
}

// scanEvent scans the columns of eventColumns, after any the caller's scan
// function adds in front.
func scanEvent(scan func(dest ...any) error, extra ...any) (event.Event, error) {
	var (
		e          event.Event
		id, md     string
		recordedAt int64
	)
	dest := append(extra, &e.Position, &id, &e.StreamID, &e.StreamType, &e.Version, &e.Type,
		&e.SchemaVersion, &e.Data, &md, &recordedAt)
	if err := scan(dest...); err != nil {
		return event.Event{}, err
	}
	var err error
	if e.ID, err = uuid.Parse(id); err != nil {
		return event.Event{}, fmt.Errorf("event at position %d: stored ID %q: %w", e.Position, id, err)
	}
	if err := decodeMetadata([]byte(md), &e.Metadata); err != nil {
		return event.Event{}, fmt.Errorf("event %s: stored metadata: %w", id, err)
	}
	if e.Data == nil {
		e.Data = []byte{}
	}
	e.RecordedAt = time.Unix(0, recordedAt).UTC()
	return e, nil
}
