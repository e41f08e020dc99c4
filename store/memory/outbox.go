package memory

import (
	"cmp"
	"context"
	"slices"
	"strconv"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/outbox"
)

// Pending implements outbox.Store: up to limit unpublished records, oldest
// first.
func (s *Store) Pending(ctx context.Context, limit int) ([]outbox.Record, error) {
	if limit < 1 {
		return nil, &event.ValidationError{Field: "limit", Value: strconv.Itoa(limit), Reason: "limit must be >= 1"}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.parked) == 0 {
		recs := s.outbox[:min(len(s.outbox), limit)]
		out := make([]outbox.Record, len(recs))
		for i, r := range recs {
			out[i] = outbox.Record{ID: r.ID, Event: copyEvent(r.Event)}
		}
		return out, nil
	}
	held := make(map[string]bool, len(s.parked))
	for _, p := range s.parked {
		held[p.Event.StreamID] = true
	}
	var out []outbox.Record
	for _, r := range s.outbox {
		if len(out) == limit {
			break
		}
		if !held[r.Event.StreamID] {
			out = append(out, outbox.Record{ID: r.ID, Event: copyEvent(r.Event)})
		}
	}
	return out, nil
}

// Park implements outbox.Store: it moves the record out of the outbox into
// the parked records, where it holds back its stream.
func (s *Store) Park(ctx context.Context, id int64, reason string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.outbox, func(r outbox.Record) bool { return r.ID == id })
	if i < 0 {
		return nil
	}
	p := outbox.ParkedRecord{Record: s.outbox[i], Reason: reason, ParkedAt: s.now().UTC()}
	s.outbox = slices.Delete(s.outbox, i, i+1)
	j, _ := slices.BinarySearchFunc(s.parked, id, func(p outbox.ParkedRecord, id int64) int { return cmp.Compare(p.ID, id) })
	s.parked = slices.Insert(s.parked, j, p)
	return nil
}

// Parked implements outbox.ParkedStore.
func (s *Store) Parked(ctx context.Context, after int64, limit int) ([]outbox.ParkedRecord, error) {
	if limit < 1 {
		return nil, &event.ValidationError{Field: "limit", Value: strconv.Itoa(limit), Reason: "limit must be >= 1"}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []outbox.ParkedRecord
	for _, p := range s.parked {
		if p.ID > after && len(out) < limit {
			p.Event = copyEvent(p.Event)
			out = append(out, p)
		}
	}
	return out, nil
}

// RetryParked implements outbox.ParkedStore: the records go back into the
// outbox under their IDs, ahead of their streams' later records.
func (s *Store) RetryParked(ctx context.Context, ids []int64) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	s.parked = slices.DeleteFunc(s.parked, func(p outbox.ParkedRecord) bool {
		if !slices.Contains(ids, p.ID) {
			return false
		}
		j, _ := slices.BinarySearchFunc(s.outbox, p.ID, func(r outbox.Record, id int64) int { return cmp.Compare(r.ID, id) })
		s.outbox = slices.Insert(s.outbox, j, p.Record)
		n++
		return true
	})
	if n > 0 {
		s.notify()
	}
	return n, nil
}

// DiscardParked implements outbox.ParkedStore.
func (s *Store) DiscardParked(ctx context.Context, ids []int64) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	before := len(s.parked)
	s.parked = slices.DeleteFunc(s.parked, func(p outbox.ParkedRecord) bool { return slices.Contains(ids, p.ID) })
	if n := before - len(s.parked); n > 0 {
		s.notify() // the streams they held back flow again
		return n, nil
	}
	return 0, nil
}

// Delete implements outbox.Store. Unknown IDs are ignored.
func (s *Store) Delete(ctx context.Context, ids []int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	gone := make(map[int64]struct{}, len(ids))
	for _, id := range ids {
		gone[id] = struct{}{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// A relay deletes what Pending returned: the head of the queue. Drop a
	// deleted prefix without moving the rest.
	head := 0
	for head < len(s.outbox) {
		if _, ok := gone[s.outbox[head].ID]; !ok {
			break
		}
		s.outbox[head] = outbox.Record{} // release the event
		head++
	}
	s.outbox = s.outbox[head:]
	if len(gone) > head {
		s.outbox = slices.DeleteFunc(s.outbox, func(r outbox.Record) bool {
			_, ok := gone[r.ID]
			return ok
		})
	}
	if len(s.outbox) == 0 {
		s.outbox = nil
	}
	return nil
}

// Stats implements outbox.Store. A record's age is its event's RecordedAt.
func (s *Store) Stats(ctx context.Context) (outbox.Stats, error) {
	if err := ctx.Err(); err != nil {
		return outbox.Stats{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := outbox.Stats{Backlog: int64(len(s.outbox)), Parked: int64(len(s.parked))}
	if len(s.outbox) > 0 {
		st.OldestAt = s.outbox[0].Event.RecordedAt
	}
	return st, nil
}

// Listen returns a channel that receives a value after appends add outbox
// records, until ctx ends; then it is closed. Several appends between two
// receives are coalesced into one value. It lets an outbox relay sleep
// until there is work instead of polling.
func (s *Store) Listen(ctx context.Context) (<-chan struct{}, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.listeners[ch] = struct{}{}
	s.mu.Unlock()
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		delete(s.listeners, ch)
		s.mu.Unlock()
		close(ch)
	})
	return ch, nil
}

// notify wakes every listener without blocking. The caller holds s.mu.
func (s *Store) notify() {
	for ch := range s.listeners {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
