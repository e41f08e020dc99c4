package memory

import (
	"context"
	"iter"
	"sync"
	"time"

	"github.com/cqrskit/cqrskit/driver"
	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/outbox"
	"github.com/google/uuid"
)

// Store is an in-memory event store, snapshot store and outbox. The zero
// value is not usable; call New. A Store is safe for concurrent use.
type Store struct {
	mu sync.RWMutex
	// log holds every event in position order: log[i].Position == i+1.
	// Stored events are never modified, so a reader may keep a slice of log
	// and read it without the lock.
	log []event.Event
	// streams maps a stream ID to the indexes in log of its events, in
	// version order.
	streams   map[string][]int
	ids       map[uuid.UUID]int // event ID -> index in log
	snapshots map[string]es.Snapshot
	outbox    []outbox.Record
	outboxSeq int64
	// parked holds the records the broker rejected for good, in ID order.
	parked    []outbox.ParkedRecord
	listeners map[chan struct{}]struct{}
	now       func() time.Time
}

var (
	_ event.Store      = (*Store)(nil)
	_ es.SnapshotStore = (*Store)(nil)
	_ outbox.Store     = (*Store)(nil)
)

// New returns an empty store.
func New() *Store {
	return &Store{
		streams:   map[string][]int{},
		ids:       map[uuid.UUID]int{},
		snapshots: map[string]es.Snapshot{},
		listeners: map[chan struct{}]struct{}{},
		now:       time.Now,
	}
}

// Append implements event.Store.
func (s *Store) Append(ctx context.Context, stream string, expected event.ExpectedVersion, events []event.Event) (event.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return event.AppendResult{}, err
	}
	events, err := driver.PrepareAppend(stream, expected, events)
	if err != nil {
		return event.AppendResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	current := int64(len(s.streams[stream]))
	var stored map[uuid.UUID]driver.StoredAt
	for _, e := range events {
		if i, ok := s.ids[e.ID]; ok {
			if stored == nil {
				stored = map[uuid.UUID]driver.StoredAt{}
			}
			stored[e.ID] = driver.StoredAt{Stream: s.log[i].StreamID, Version: s.log[i].Version}
		}
	}
	fresh, err := driver.SkipStored(stream, events, stored)
	if err != nil {
		return event.AppendResult{}, err
	}
	skipped := len(events) - len(fresh)
	if len(fresh) == 0 {
		return event.AppendResult{Version: current, Skipped: skipped}, nil
	}
	if err := expected.Check(stream, current); err != nil {
		return event.AppendResult{}, err
	}
	now := s.now().UTC()
	out := make([]event.Event, len(fresh))
	for i, e := range fresh {
		e.Version = current + int64(i) + 1
		e.Position = int64(len(s.log)) + 1
		e.TxID = 0
		e.RecordedAt = now
		// driver.PrepareAppend copied the envelope and metadata; the payload bytes
		// are still the caller's.
		e.Data = clone(e.Data)
		s.streams[stream] = append(s.streams[stream], len(s.log))
		s.ids[e.ID] = len(s.log)
		s.log = append(s.log, e)
		s.outboxSeq++
		s.outbox = append(s.outbox, outbox.Record{ID: s.outboxSeq, Event: e})
		out[i] = copyEvent(e)
	}
	s.notify()
	return event.AppendResult{Version: current + int64(len(fresh)), Events: out, Skipped: skipped}, nil
}

// Load implements event.Store. It yields copies of the events that were in
// the stream when iteration started, holding no lock while yielding.
func (s *Store) Load(ctx context.Context, stream string, from int64) iter.Seq2[event.Event, error] {
	if err := driver.ValidateLoad(stream, from); err != nil {
		return driver.ErrorSeq(err)
	}
	return func(yield func(event.Event, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(event.Event{}, err)
			return
		}
		s.mu.RLock()
		idx, log := s.streams[stream], s.log
		s.mu.RUnlock()
		if len(idx) == 0 {
			yield(event.Event{}, driver.StreamNotFoundError(stream))
			return
		}
		if from > int64(len(idx)) {
			return
		}
		for _, i := range idx[from-1:] {
			if err := ctx.Err(); err != nil {
				yield(event.Event{}, err)
				return
			}
			if !yield(copyEvent(log[i]), nil) {
				return
			}
		}
	}
}

// ReadAll implements event.Store. Every event has TxID 0, so the cursor's
// position alone orders the log.
func (s *Store) ReadAll(ctx context.Context, after event.Cursor, limit int) ([]event.Event, error) {
	if err := driver.ValidateReadAll(after, limit); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if after.TxID > 0 {
		// Every event here orders before a cursor with a transaction ID.
		return nil, nil
	}
	s.mu.RLock()
	log := s.log
	s.mu.RUnlock()
	if after.Position >= int64(len(log)) {
		return nil, nil
	}
	tail := log[after.Position:]
	tail = tail[:min(len(tail), limit)]
	out := make([]event.Event, len(tail))
	for i, e := range tail {
		out[i] = copyEvent(e)
	}
	s.notify()
	return out, nil
}

// copyEvent returns e with its payload and metadata copied.
func copyEvent(e event.Event) event.Event {
	e.Data = clone(e.Data)
	e.Metadata = e.Metadata.Clone()
	return e
}

// clone copies b, keeping an empty non-nil slice non-nil (Data must not be
// nil).
func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}
