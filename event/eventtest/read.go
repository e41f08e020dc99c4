package eventtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/event"
)

func testLoadFromVersion(t *testing.T, h Harness) {
	st := stream(t)
	mustAppend(t, h.Store, st, event.NoStream, events(5)...)
	if got := mustLoad(t, h.Store, st, 3); !slices.Equal(versions(got), []int64{3, 4, 5}) {
		t.Errorf("load from 3 = %v, want [3 4 5]", versions(got))
	}
	if got := mustLoad(t, h.Store, st, 6); len(got) != 0 {
		t.Errorf("load from 6 = %v, want nothing", versions(got))
	}
	_, err := load(t, h.Store, "test-missing-"+uuid.NewString(), 1)
	if !errors.Is(err, event.ErrStreamNotFound) {
		t.Errorf("load of a missing stream: %v, want ErrStreamNotFound", err)
	}
	for _, from := range []int64{0, -1} {
		if _, err := load(t, h.Store, st, from); !errors.Is(err, event.ErrInvalidEvent) {
			t.Errorf("load from %d: %v, want ErrInvalidEvent", from, err)
		}
	}
	// Streams longer than any internal page load completely and in order.
	long := stream(t)
	for range 5 {
		mustAppend(t, h.Store, long, event.Any, events(500)...)
	}
	if got := mustLoad(t, h.Store, long, 1); !slices.Equal(versions(got), seq(1, 2500)) {
		t.Errorf("load of a 2500-event stream returned %d events", len(got))
	}
}

func testLoadStopsEarly(t *testing.T, h Harness) {
	st := stream(t)
	mustAppend(t, h.Store, st, event.NoStream, events(10)...)
	n := 0
	for _, err := range h.Store.Load(ctxFor(t), st, 1) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if n == 3 {
			break
		}
	}
	// The store stays usable after an abandoned iteration.
	mustAppend(t, h.Store, st, event.Exactly(10), events(1)...)
	if got := mustLoad(t, h.Store, st, 1); len(got) != 11 {
		t.Errorf("after early break: %d events, want 11", len(got))
	}
}

func testReadAllPages(t *testing.T, h Harness) {
	var want []uuid.UUID
	for range 4 {
		st := stream(t)
		res := mustAppend(t, h.Store, st, event.NoStream, events(3)...)
		for _, e := range res.Events {
			want = append(want, e.ID)
		}
	}
	for _, limit := range []int{1, 2, 5, 100} {
		got := readAll(t, h.Store, limit)
		var ids []uuid.UUID
		for i, e := range got {
			ids = append(ids, e.ID)
			if i > 0 && !got[i-1].Cursor().Less(e.Cursor()) {
				t.Fatalf("limit %d: events %d and %d out of cursor order", limit, i-1, i)
			}
		}
		if !slices.Equal(ids, want) {
			t.Errorf("limit %d: read %d events in order %v, want %v", limit, len(ids), ids, want)
		}
	}
	if _, err := h.Store.ReadAll(ctxFor(t), event.Cursor{}, 0); !errors.Is(err, event.ErrInvalidEvent) {
		t.Errorf("ReadAll limit 0: %v, want ErrInvalidEvent", err)
	}
	last := readAll(t, h.Store, 100)
	if len(last) == 0 {
		t.Fatal("ReadAll returned nothing after 12 committed events")
	}
	page, err := h.Store.ReadAll(ctxFor(t), last[len(last)-1].Cursor(), 10)
	if err != nil || len(page) != 0 {
		t.Errorf("ReadAll after the last event = %d events, %v; want none", len(page), err)
	}
}

func testBadInput(t *testing.T, h Harness) {
	st := stream(t)
	nilData := newEvent("test.x", 0)
	nilData.Data = nil
	noType := newEvent("", 0)
	other := newEvent("test.x", 0)
	other.StreamID = "test-other"
	dup := newEvent("test.x", 0)
	negSchema := newEvent("test.x", 0)
	negSchema.SchemaVersion = -1
	badType := newEvent("test.x", 0)
	badType.StreamType = "order:line"
	cases := []struct {
		name   string
		stream string
		exp    event.ExpectedVersion
		evs    []event.Event
		field  string
	}{
		{"empty stream ID", "", event.Any, events(1), "stream"},
		{"no events", st, event.Any, nil, "events"},
		{"nil data", st, event.Any, []event.Event{newEvent("test.x", 0), nilData}, "events[1].Data"},
		{"empty type", st, event.Any, []event.Event{noType}, "events[0].Type"},
		{"event of another stream", st, event.Any, []event.Event{newEvent("test.x", 0), other}, "events[1].StreamID"},
		{"same ID twice", st, event.Any, []event.Event{dup, dup}, "events[1].ID"},
		{"negative schema version", st, event.Any, []event.Event{negSchema}, "events[0].SchemaVersion"},
		{"Exactly(0)", st, event.Exactly(0), events(1), "expected version"},
		{"Exactly(-3)", st, event.Exactly(-3), events(1), "expected version"},
		// Names no broker carries: the stream type is the topic, the
		// stream ID the message key.
		{"undeliverable stream type", st, event.Any, []event.Event{newEvent("test.x", 0), badType}, "events[1].StreamType"},
		{"control character in stream ID", "test-\n1", event.Any, events(1), "stream"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.Store.Append(ctxFor(t), tc.stream, tc.exp, tc.evs)
			var ve *event.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, event.ErrInvalidEvent) {
				t.Fatalf("got %v, want a *event.ValidationError", err)
			}
			if ve.Field != tc.field {
				t.Errorf("error names field %q, want %q (%v)", ve.Field, tc.field, err)
			}
		})
	}
	if got := readAll(t, h.Store, 100); len(got) != 0 {
		t.Errorf("bad input stored %d events", len(got))
	}
}

func testConcurrentOneStream(t *testing.T, h Harness) {
	const writers, perWriter = 32, 5
	st := stream(t)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if err := appendWithRetry(ctxFor(t), h.Store, st, newEvent("test.concurrent", w*1000+i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := mustLoad(t, h.Store, st, 1)
	if !slices.Equal(versions(got), seq(1, writers*perWriter)) {
		t.Fatalf("versions after %d concurrent appends: %v", writers*perWriter, versions(got))
	}
	seen := map[uuid.UUID]bool{}
	for _, e := range got {
		if seen[e.ID] {
			t.Fatalf("event %s stored twice", e.ID)
		}
		seen[e.ID] = true
	}
}

// appendWithRetry reads the stream version and appends with Exactly, retrying
// on conflicts, as a repository's Update does.
func appendWithRetry(ctx context.Context, s event.Store, st string, e event.Event) error {
	for attempt := 0; ; attempt++ {
		var v int64
		for ev, err := range s.Load(ctx, st, 1) {
			if errors.Is(err, event.ErrStreamNotFound) {
				break
			}
			if err != nil {
				return err
			}
			v = ev.Version
		}
		exp := event.NoStream
		if v > 0 {
			exp = event.Exactly(v)
		}
		_, err := s.Append(ctx, st, exp, []event.Event{e})
		if err == nil || !errors.Is(err, event.ErrConcurrencyConflict) {
			return err
		}
		if attempt > 1000 {
			return fmt.Errorf("gave up after %d conflicts: %w", attempt, err)
		}
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
	}
}
