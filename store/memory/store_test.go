package memory_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/event/eventtest"
	"github.com/cqrskit/cqrskit/store/memory"
)

func TestContract(t *testing.T) {
	eventtest.Run(t, func(t *testing.T) eventtest.Harness {
		s := memory.New()
		return eventtest.Harness{Store: s, Outbox: s}
	})
}

func ev(typ, data string) event.Event {
	return event.Event{Type: typ, Data: []byte(data), Metadata: event.Metadata{Extra: map[string]string{"k": "v"}}}
}

func collect(t *testing.T, s *memory.Store, stream string, from int64) ([]event.Event, error) {
	t.Helper()
	var out []event.Event
	for e, err := range s.Load(t.Context(), stream, from) {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

func TestAppendLoadReadAll(t *testing.T) {
	t.Parallel()
	s := memory.New()
	ctx := t.Context()
	res, err := s.Append(ctx, "a-1", event.NoStream, []event.Event{ev("x", `1`), ev("x", `2`)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 2 || len(res.Events) != 2 || res.Events[1].Version != 2 || res.Events[1].Position != 2 {
		t.Fatalf("append result %+v", res)
	}
	if _, err := s.Append(ctx, "b-1", event.NoStream, []event.Event{ev("y", `3`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "a-1", event.Exactly(2), []event.Event{ev("x", `4`)}); err != nil {
		t.Fatal(err)
	}

	got, err := collect(t, s, "a-1", 2)
	if err != nil || len(got) != 2 || string(got[0].Data) != "2" || string(got[1].Data) != "4" || got[1].Version != 3 || got[1].Position != 4 {
		t.Fatalf("Load(a-1, 2) = %+v, %v", got, err)
	}
	if got, err := collect(t, s, "a-1", 9); err != nil || len(got) != 0 {
		t.Fatalf("Load past the end = %v, %v; want nothing", got, err)
	}
	if _, err := collect(t, s, "none", 1); !errors.Is(err, event.ErrStreamNotFound) {
		t.Fatalf("missing stream: err = %v", err)
	}
	if _, err := collect(t, s, "a-1", 0); !errors.Is(err, event.ErrInvalidEvent) {
		t.Fatalf("from 0: err = %v", err)
	}

	all, err := s.ReadAll(ctx, event.Cursor{}, 3)
	if err != nil || len(all) != 3 || all[2].StreamID != "b-1" {
		t.Fatalf("ReadAll first page = %+v, %v", all, err)
	}
	for _, e := range all {
		if e.TxID != 0 || e.RecordedAt.IsZero() || e.RecordedAt.Location() != time.UTC {
			t.Fatalf("event %d: TxID %d RecordedAt %v", e.Position, e.TxID, e.RecordedAt)
		}
	}
	rest, err := s.ReadAll(ctx, all[2].Cursor(), 10)
	if err != nil || len(rest) != 1 || rest[0].Position != 4 {
		t.Fatalf("ReadAll second page = %+v, %v", rest, err)
	}
	if none, err := s.ReadAll(ctx, rest[0].Cursor(), 10); err != nil || len(none) != 0 {
		t.Fatalf("ReadAll at the end = %+v, %v", none, err)
	}
	if _, err := s.ReadAll(ctx, event.Cursor{}, 0); !errors.Is(err, event.ErrInvalidEvent) {
		t.Fatalf("limit 0: err = %v", err)
	}
}

// Nothing handed in or out aliases stored data.
func TestCopies(t *testing.T) {
	t.Parallel()
	s := memory.New()
	ctx := t.Context()
	in := []event.Event{ev("x", `"orig"`)}
	res, err := s.Append(ctx, "c-1", event.Any, in)
	if err != nil {
		t.Fatal(err)
	}
	in[0].Data[1] = 'X'
	in[0].Metadata.Extra["k"] = "in"
	res.Events[0].Data[1] = 'Y'
	res.Events[0].Metadata.Extra["k"] = "res"

	loaded, _ := collect(t, s, "c-1", 1)
	loaded[0].Data[1] = 'Z'
	loaded[0].Metadata.Extra["k"] = "loaded"
	all, _ := s.ReadAll(ctx, event.Cursor{}, 1)
	all[0].Data[1] = 'W'
	all[0].Metadata.Extra["k"] = "all"
	recs, _ := s.Pending(ctx, 1)
	recs[0].Event.Data[1] = 'V'
	recs[0].Event.Metadata.Extra["k"] = "outbox"

	check := func(where string, e event.Event) {
		t.Helper()
		if string(e.Data) != `"orig"` || e.Metadata.Extra["k"] != "v" {
			t.Errorf("%s: stored event changed through a copy: data %s, extra %v", where, e.Data, e.Metadata.Extra)
		}
	}
	got, _ := collect(t, s, "c-1", 1)
	check("Load", got[0])
	all, _ = s.ReadAll(ctx, event.Cursor{}, 1)
	check("ReadAll", all[0])
	recs, _ = s.Pending(ctx, 1)
	check("Pending", recs[0].Event)

	snap := es.Snapshot{StreamID: "c-1", Version: 1, SchemaVersion: 1, Data: []byte("state")}
	if err := s.SaveSnapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	snap.Data[0] = 'X'
	got1, _, _ := s.LoadSnapshot(ctx, "c-1")
	got1.Data[1] = 'Y'
	got2, _, _ := s.LoadSnapshot(ctx, "c-1")
	if !bytes.Equal(got2.Data, []byte("state")) {
		t.Errorf("snapshot changed through a copy: %q", got2.Data)
	}
}

// The iterator holds no lock while the caller handles an event: appending
// from inside the loop must not deadlock, and the loop sees the stream as
// it was when it started.
func TestLoadDoesNotHoldLock(t *testing.T) {
	t.Parallel()
	s := memory.New()
	ctx := t.Context()
	if _, err := s.Append(ctx, "l-1", event.NoStream, []event.Event{ev("x", `1`), ev("x", `2`)}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range s.Load(ctx, "l-1", 1) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if _, err := s.Append(ctx, "l-1", event.Any, []event.Event{ev("x", `more`)}); err != nil {
			t.Fatal(err)
		}
	}
	if n != 2 {
		t.Fatalf("loop saw %d events, want the 2 present at its start", n)
	}
	if got, _ := collect(t, s, "l-1", 1); len(got) != 4 {
		t.Fatalf("stream has %d events, want 4", len(got))
	}
}

func TestLoadCanceled(t *testing.T) {
	t.Parallel()
	s := memory.New()
	if _, err := s.Append(t.Context(), "k-1", event.NoStream, []event.Event{ev("x", `1`), ev("x", `2`)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var errs []error
	for _, err := range s.Load(ctx, "k-1", 1) {
		cancel()
		if err != nil {
			errs = append(errs, err)
			break
		}
	}
	if len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("errors %v, want context.Canceled after the first event", errs)
	}
	if _, err := s.Append(ctx, "k-1", event.Any, []event.Event{ev("x", `3`)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a canceled context: %v", err)
	}
}

func TestSnapshots(t *testing.T) {
	t.Parallel()
	s := memory.New()
	ctx := t.Context()
	if _, ok, err := s.LoadSnapshot(ctx, "p-1"); ok || err != nil {
		t.Fatalf("empty store: ok %v err %v", ok, err)
	}
	save := func(v int64, schema int) {
		t.Helper()
		if err := s.SaveSnapshot(ctx, es.Snapshot{StreamID: "p-1", Version: v, SchemaVersion: schema, Data: []byte("d")}); err != nil {
			t.Fatal(err)
		}
	}
	save(10, 1)
	save(5, 1) // older: kept out
	if got, _, _ := s.LoadSnapshot(ctx, "p-1"); got.Version != 10 {
		t.Fatalf("version %d after an older save, want 10", got.Version)
	}
	save(10, 2) // same version, new schema: replaces
	if got, _, _ := s.LoadSnapshot(ctx, "p-1"); got.SchemaVersion != 2 {
		t.Fatalf("schema %d, want 2", got.SchemaVersion)
	}
	if err := s.SaveSnapshot(ctx, es.Snapshot{Version: 1}); err == nil {
		t.Fatal("snapshot without stream: want an error")
	}
	if err := s.SaveSnapshot(ctx, es.Snapshot{StreamID: "p-1"}); err == nil {
		t.Fatal("snapshot at version 0: want an error")
	}
}

func TestOutboxListen(t *testing.T) {
	t.Parallel()
	s := memory.New()
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := s.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // coalesced into one wake-up
		if _, err := s.Append(ctx, "o-1", event.Any, []event.Event{ev("x", `1`)}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no wake-up after an append")
	}
	select {
	case <-ch:
		t.Fatal("three appends gave more than one wake-up")
	default:
	}
	cancel()
	select {
	case _, open := <-ch:
		if open {
			t.Fatal("channel still open after ctx ended")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after ctx ended")
	}
	if _, err := s.Append(t.Context(), "o-1", event.Any, []event.Event{ev("x", `1`)}); err != nil {
		t.Fatal(err) // must not send on the closed channel
	}
	if _, err := s.Pending(t.Context(), 0); !errors.Is(err, event.ErrInvalidEvent) {
		t.Fatalf("Pending(0): err = %v", err)
	}
}

// Many writers and a relay draining the outbox at once: every event gets
// exactly one record, and records come out in position order.
func TestOutboxConcurrentDrain(t *testing.T) {
	t.Parallel()
	s := memory.New()
	ctx := t.Context()
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for range each {
				if _, err := s.Append(ctx, "w-"+string(rune('a'+w)), event.Any, []event.Event{ev("x", `1`)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var positions []int64
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for finished := false; ; {
		select {
		case <-done:
			finished = true
		default:
		}
		recs, err := s.Pending(ctx, 64)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]int64, len(recs))
		for i, r := range recs {
			ids[i] = r.ID
			positions = append(positions, r.Event.Position)
		}
		if err := s.Delete(ctx, ids); err != nil {
			t.Fatal(err)
		}
		if finished && len(recs) == 0 {
			break
		}
	}
	if len(positions) != writers*each {
		t.Fatalf("drained %d records, want %d", len(positions), writers*each)
	}
	for i, p := range positions {
		if p != int64(i+1) {
			t.Fatalf("record %d has position %d, want %d", i, p, i+1)
		}
	}
	if st, _ := s.Stats(ctx); st.Backlog != 0 || !st.OldestAt.IsZero() {
		t.Fatalf("stats after drain %+v", st)
	}
}

func TestOutboxDeleteAnyOrder(t *testing.T) {
	t.Parallel()
	s := memory.New()
	ctx := t.Context()
	for range 6 {
		if _, err := s.Append(ctx, "d-1", event.Any, []event.Event{ev("x", `1`)}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func() []int64 {
		recs, err := s.Pending(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, r := range recs {
			out = append(out, r.ID)
		}
		return out
	}
	steps := []struct {
		del  []int64
		want string
	}{
		{[]int64{3, 5, 99}, "[1 2 4 6]"}, // middle, with an unknown ID
		{[]int64{2, 1}, "[4 6]"},         // the head, out of order
		{[]int64{6, 4, 4}, "[]"},
		{[]int64{1}, "[]"},
	}
	for _, st := range steps {
		if err := s.Delete(ctx, st.del); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(ids()); got != st.want {
			t.Fatalf("after Delete(%v): pending %s, want %s", st.del, got, st.want)
		}
	}
}
