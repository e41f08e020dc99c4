package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"time"

	"github.com/google/uuid"

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
	if err := event.ValidateLoad(stream, from); err != nil {
		return event.ErrorSeq(fmt.Errorf("load stream %s: %w", stream, err))
	}
	return func(yield func(event.Event, error) bool) {
		first := true
		for {
			page, err := s.loadPage(ctx, stream, from)
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
					yield(event.Event{}, event.StreamNotFoundError(stream))
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

func (s *Store) loadPage(ctx context.Context, stream string, from int64) ([]event.Event, error) {
	rows, err := s.db.QueryContext(ctx, s.q.loadPage, stream, from, loadPageSize)
	if err != nil {
		return nil, s.explain(ctx, s.db, s.q.eventsTable, err)
	}
	defer rows.Close()
	page := make([]event.Event, 0, 16)
	for rows.Next() {
		e, err := scanEvent(rows.Scan)
		if err != nil {
			return nil, err
		}
		page = append(page, e)
	}
	return page, rows.Err()
}

// ReadAll returns up to limit events after the cursor in position order.
// SQLite commits one writer at a time, in position order, so reading past
// the last position never skips an event; TxID is always 0 and only the
// cursor's Position is used.
func (s *Store) ReadAll(ctx context.Context, after event.Cursor, limit int) ([]event.Event, error) {
	if err := event.ValidateReadAll(after, limit); err != nil {
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
	if err := json.Unmarshal([]byte(md), &e.Metadata); err != nil {
		return event.Event{}, fmt.Errorf("event %s: stored metadata: %w", id, err)
	}
	if e.Data == nil {
		e.Data = []byte{}
	}
	e.RecordedAt = time.Unix(0, recordedAt).UTC()
	return e, nil
}
