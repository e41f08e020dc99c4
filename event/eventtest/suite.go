package eventtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/event"
)

// Run runs the contract suite. newHarness must return a fresh, empty store
// for each call; the suite calls it once per subtest.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"ExpectedVersionModes", testExpectedVersionModes},
		{"ConflictCarriesDetail", testConflictDetail},
		{"StoredFields", testStoredFields},
		{"DuplicateEventID", testDuplicateEventID},
		{"LoadFromVersion", testLoadFromVersion},
		{"LoadStopsEarly", testLoadStopsEarly},
		{"ReadAllPages", testReadAllPages},
		{"BadInputStoresNothing", testBadInput},
		{"ConcurrentAppendersOneStream", testConcurrentOneStream},
		{"OutboxRowPerEvent", testOutbox},
		{"TxCommitAndRollback", testTx},
		{"CatchUpReaderNeverSkips", testCatchUpReader},
		{"GlobalLogKeepsStreamOrder", testGlobalStreamOrder},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newHarness(t))
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newEvent returns an event with a fresh ID and a small JSON payload.
func newEvent(typ string, n int) event.Event {
	return event.Event{
		ID:         event.NewID(),
		StreamType: "test",
		Type:       typ,
		Data:       fmt.Appendf(nil, `{"n":%d}`, n),
	}
}

func events(n int) []event.Event {
	out := make([]event.Event, n)
	for i := range out {
		out[i] = newEvent("test.happened", i)
	}
	return out
}

func mustAppend(t *testing.T, s event.Store, stream string, exp event.ExpectedVersion, evs ...event.Event) event.AppendResult {
	t.Helper()
	res, err := s.Append(ctxFor(t), stream, exp, evs)
	if err != nil {
		t.Fatalf("append %d events to %s expecting %s: %v", len(evs), stream, exp, err)
	}
	return res
}

func load(t *testing.T, s event.Store, stream string, from int64) ([]event.Event, error) {
	t.Helper()
	var out []event.Event
	for e, err := range s.Load(ctxFor(t), stream, from) {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

func mustLoad(t *testing.T, s event.Store, stream string, from int64) []event.Event {
	t.Helper()
	evs, err := load(t, s, stream, from)
	if err != nil {
		t.Fatalf("load %s from %d: %v", stream, from, err)
	}
	return evs
}

func readAll(t *testing.T, s event.Store, limit int) []event.Event {
	t.Helper()
	var out []event.Event
	var cur event.Cursor
	for {
		page, err := s.ReadAll(ctxFor(t), cur, limit)
		if err != nil {
			t.Fatalf("read all after %+v: %v", cur, err)
		}
		if len(page) == 0 {
			return out
		}
		if len(page) > limit {
			t.Fatalf("ReadAll returned %d events for limit %d", len(page), limit)
		}
		out = append(out, page...)
		cur = page[len(page)-1].Cursor()
	}
}

func versions(evs []event.Event) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.Version
	}
	return out
}

func seq(from, to int64) []int64 {
	var out []int64
	for v := from; v <= to; v++ {
		out = append(out, v)
	}
	return out
}

func stream(t *testing.T) string { return "test-" + uuid.NewString() }

func testExpectedVersionModes(t *testing.T, h Harness) {
	s := h.Store
	cases := []struct {
		name     string
		existing int // events already in the stream
		expected event.ExpectedVersion
		wantOK   bool
	}{
		{"Any on new stream", 0, event.Any, true},
		{"Any on existing stream", 2, event.Any, true},
		{"NoStream on new stream", 0, event.NoStream, true},
		{"NoStream on existing stream", 1, event.NoStream, false},
		{"StreamExists on new stream", 0, event.StreamExists, false},
		{"StreamExists on existing stream", 3, event.StreamExists, true},
		{"Exactly matching", 2, event.Exactly(2), true},
		{"Exactly behind", 3, event.Exactly(2), false},
		{"Exactly ahead", 1, event.Exactly(2), false},
		{"Exactly on new stream", 0, event.Exactly(1), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := stream(t)
			if tc.existing > 0 {
				mustAppend(t, s, st, event.NoStream, events(tc.existing)...)
			}
			res, err := s.Append(ctxFor(t), st, tc.expected, events(2))
			got, _ := load(t, s, st, 1)
			if tc.wantOK {
				if err != nil {
					t.Fatalf("append: %v", err)
				}
				want := int64(tc.existing + 2)
				if res.Version != want {
					t.Errorf("AppendResult.Version = %d, want %d", res.Version, want)
				}
				if !slices.Equal(versions(got), seq(1, want)) {
					t.Errorf("stored versions %v, want 1..%d", versions(got), want)
				}
				return
			}
			if !errors.Is(err, event.ErrConcurrencyConflict) {
				t.Fatalf("append: got %v, want a concurrency conflict", err)
			}
			if len(got) != tc.existing {
				t.Errorf("after a conflict the stream has %d events, want %d unchanged", len(got), tc.existing)
			}
		})
	}
}

func testConflictDetail(t *testing.T, h Harness) {
	st := stream(t)
	mustAppend(t, h.Store, st, event.NoStream, events(3)...)
	_, err := h.Store.Append(ctxFor(t), st, event.Exactly(1), events(1))
	var ce *event.ConcurrencyError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v (%T), want *event.ConcurrencyError", err, err)
	}
	if ce.Stream != st || ce.Actual != 3 || ce.Expected != event.Exactly(1) {
		t.Errorf("conflict detail = {%s %s %d}, want {%s version 1 3}", ce.Stream, ce.Expected, ce.Actual, st)
	}
	if !errors.Is(err, event.ErrConcurrencyConflict) {
		t.Error("errors.Is(err, ErrConcurrencyConflict) = false")
	}
}

func testStoredFields(t *testing.T, h Harness) {
	st := stream(t)
	in := newEvent("test.created", 7)
	in.SchemaVersion = 0 // stored as 1
	in.Metadata = event.Metadata{
		CorrelationID: "corr-1", CausationID: "cause-1",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "k=v",
		Extra: map[string]string{"tenant": "acme"},
	}
	second := newEvent("test.renamed", 8)
	second.SchemaVersion = 3
	before := time.Now().Add(-time.Minute)
	res := mustAppend(t, h.Store, st, event.NoStream, in, second)
	if len(res.Events) != 2 || res.Events[0].Version != 1 || res.Events[1].Version != 2 {
		t.Fatalf("AppendResult.Events versions = %v, want [1 2]", versions(res.Events))
	}
	got := mustLoad(t, h.Store, st, 1)
	if len(got) != 2 {
		t.Fatalf("loaded %d events, want 2", len(got))
	}
	e := got[0]
	if e.ID != in.ID || e.StreamID != st || e.StreamType != "test" || e.Type != "test.created" || e.Version != 1 {
		t.Errorf("stored envelope = %+v", e)
	}
	if e.SchemaVersion != 1 || got[1].SchemaVersion != 3 {
		t.Errorf("schema versions = %d, %d, want 1, 3", e.SchemaVersion, got[1].SchemaVersion)
	}
	if !bytes.Equal(e.Data, in.Data) {
		t.Errorf("data = %s, want %s", e.Data, in.Data)
	}
	if e.Metadata.CorrelationID != "corr-1" || e.Metadata.CausationID != "cause-1" ||
		e.Metadata.TraceParent != in.Metadata.TraceParent || e.Metadata.TraceState != "k=v" ||
		e.Metadata.Extra["tenant"] != "acme" {
		t.Errorf("metadata = %+v, want %+v", e.Metadata, in.Metadata)
	}
	if e.Position <= 0 || got[1].Position <= e.Position {
		t.Errorf("positions = %d, %d: want positive and increasing", e.Position, got[1].Position)
	}
	if e.RecordedAt.Before(before) || e.RecordedAt.After(time.Now().Add(time.Minute)) || e.RecordedAt.Location() != time.UTC {
		t.Errorf("RecordedAt = %v, want about now in UTC", e.RecordedAt)
	}
}

func testDuplicateEventID(t *testing.T, h Harness) {
	s := h.Store
	st := stream(t)
	e1, e2 := newEvent("test.a", 1), newEvent("test.b", 2)
	mustAppend(t, s, st, event.NoStream, e1, e2)

	// A retry of the same append, even with a now-stale expected version, is a no-op.
	res, err := s.Append(ctxFor(t), st, event.NoStream, []event.Event{e1, e2})
	if err != nil {
		t.Fatalf("re-append of stored events: %v, want a no-op", err)
	}
	if res.Version != 2 || len(res.Events) != 0 || res.Skipped != 2 {
		t.Errorf("no-op result = {Version %d, %d events, Skipped %d}, want {2, 0, 2}", res.Version, len(res.Events), res.Skipped)
	}
	// A batch mixing a stored and a new event stores only the new one.
	e3 := newEvent("test.c", 3)
	res = mustAppend(t, s, st, event.Exactly(2), e2, e3)
	if res.Version != 3 {
		t.Errorf("mixed batch version = %d, want 3", res.Version)
	}
	got := mustLoad(t, s, st, 1)
	ids := []uuid.UUID{}
	for _, e := range got {
		ids = append(ids, e.ID)
	}
	if !slices.Equal(ids, []uuid.UUID{e1.ID, e2.ID, e3.ID}) || !slices.Equal(versions(got), seq(1, 3)) {
		t.Errorf("stream holds %v at versions %v, want e1,e2,e3 at 1..3", ids, versions(got))
	}
	if res.Skipped != 1 || len(res.Events) != 1 || res.Events[0].ID != e3.ID {
		t.Errorf("mixed batch result = {Skipped %d, %d events}, want {1, [e3]}", res.Skipped, len(res.Events))
	}
	// A whole retry reports how many events it skipped.
	if res, err := s.Append(ctxFor(t), st, event.Exactly(1), []event.Event{e2, e3}); err != nil || res.Skipped != 2 || res.Version != 3 {
		t.Errorf("retry of the mixed batch = %+v, %v; want {Version 3, Skipped 2}", res, err)
	}

	// The same ID anywhere else is an error naming both places, and the
	// append stores nothing, not even its new events.
	other := stream(t)
	fresh := newEvent("test.d", 4)
	wantDup := func(name string, err error, stored string, version int64) {
		t.Helper()
		var de *event.DuplicateEventIDError
		if !errors.As(err, &de) || !errors.Is(err, event.ErrDuplicateEventID) {
			t.Fatalf("%s: %v, want a *event.DuplicateEventIDError", name, err)
		}
		if de.StoredStream != stored || de.StoredVersion != version {
			t.Errorf("%s: error locates the stored event at %s version %d, want %s version %d", name, de.StoredStream, de.StoredVersion, stored, version)
		}
		if msg := err.Error(); !strings.Contains(msg, stored) || !strings.Contains(msg, de.Stream) || !strings.Contains(msg, de.ID.String()) {
			t.Errorf("%s: message %q does not name the ID and both streams", name, msg)
		}
	}
	_, err = s.Append(ctxFor(t), other, event.Any, []event.Event{e1})
	wantDup("stored ID appended to another stream", err, st, 1)
	_, err = s.Append(ctxFor(t), other, event.NoStream, []event.Event{fresh, e2})
	wantDup("stored ID after a new event, in another stream", err, st, 2)
	_, err = s.Append(ctxFor(t), st, event.Any, []event.Event{fresh, e1})
	wantDup("stored ID after a new event in its own stream", err, st, 1)
	_, err = s.Append(ctxFor(t), st, event.Any, []event.Event{e3, e1})
	wantDup("stored IDs out of their order", err, st, 1)
	if n := len(readAll(t, s, 100)); n != 3 {
		t.Errorf("global log holds %d events, want 3", n)
	}
	if _, err := load(t, s, other, 1); !errors.Is(err, event.ErrStreamNotFound) {
		t.Errorf("load %s after refused appends: %v, want ErrStreamNotFound", other, err)
	}

	if ts, ok := s.(event.TxStore); ok {
		ctx := ctxFor(t)
		tx, err := ts.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		_, err = ts.AppendTx(ctx, tx, other, event.Any, []event.Event{e1})
		wantDup("AppendTx of a stored ID to another stream", err, st, 1)
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
	}
}

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

func testOutbox(t *testing.T, h Harness) {
	if h.Outbox == nil {
		t.Skip("store writes no outbox")
	}
	ctx := ctxFor(t)
	res := mustAppend(t, h.Store, stream(t), event.NoStream, events(3)...)
	res2 := mustAppend(t, h.Store, stream(t), event.NoStream, events(2)...)
	recs, err := h.Outbox.Pending(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []uuid.UUID
	for i, r := range recs {
		got = append(got, r.Event.ID)
		if i > 0 && recs[i-1].ID >= r.ID {
			t.Errorf("outbox records out of ID order: %d then %d", recs[i-1].ID, r.ID)
		}
		if r.Event.StreamID == "" || r.Event.Type == "" || r.Event.Data == nil || r.Event.Version == 0 {
			t.Errorf("outbox record %d lacks event fields: %+v", r.ID, r.Event)
		}
	}
	var want []uuid.UUID
	for _, e := range append(res.Events, res2.Events...) {
		want = append(want, e.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("outbox holds %v, want one record per event %v", got, want)
	}
	stats, err := h.Outbox.Stats(ctx)
	if err != nil || stats.Backlog != 5 || stats.OldestAt.IsZero() {
		t.Errorf("Stats = %+v, %v; want backlog 5 with an oldest time", stats, err)
	}
	if err := h.Outbox.Delete(ctx, []int64{recs[0].ID, recs[1].ID}); err != nil {
		t.Fatal(err)
	}
	recs, err = h.Outbox.Pending(ctx, 2)
	if err != nil || len(recs) != 2 || recs[0].Event.ID != want[2] {
		t.Errorf("after delete Pending(2) = %d records, %v; want the 3rd and 4th", len(recs), err)
	}
	// A duplicate append writes no second outbox row.
	mustAppend(t, h.Store, res.Events[0].StreamID, event.Any, res.Events[2])
	if stats, _ := h.Outbox.Stats(ctx); stats.Backlog != 3 {
		t.Errorf("backlog after a duplicate append = %d, want 3", stats.Backlog)
	}
}

func testTx(t *testing.T, h Harness) {
	ts, ok := h.Store.(event.TxStore)
	if !ok {
		t.Skip("store has no transactions")
	}
	ctx := ctxFor(t)
	st := stream(t)

	tx, err := ts.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.AppendTx(ctx, tx, st, event.NoStream, events(2)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if _, err := load(t, ts, st, 1); !errors.Is(err, event.ErrStreamNotFound) {
		t.Errorf("after rollback load = %v, want ErrStreamNotFound", err)
	}
	if h.Outbox != nil {
		if s, _ := h.Outbox.Stats(ctx); s.Backlog != 0 {
			t.Errorf("after rollback the outbox holds %d rows, want 0", s.Backlog)
		}
	}
	// The stream can still be created after the rolled-back attempt.
	tx, err = ts.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.AppendTx(ctx, tx, st, event.NoStream, events(2)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := mustLoad(t, ts, st, 1); len(got) != 2 {
		t.Errorf("after commit: %d events, want 2", len(got))
	}
	if h.Outbox != nil {
		if s, _ := h.Outbox.Stats(ctx); s.Backlog != 2 {
			t.Errorf("after commit the outbox holds %d rows, want 2", s.Backlog)
		}
	}
	// A conflict inside a transaction leaves the caller's transaction usable
	// for rollback and stores nothing.
	tx, err = ts.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ts.AppendTx(ctx, tx, st, event.Exactly(1), events(1))
	_ = tx.Rollback()
	if !errors.Is(err, event.ErrConcurrencyConflict) {
		t.Errorf("AppendTx with a stale version: %v, want a conflict", err)
	}
}

// testCatchUpReader runs writers that commit in random order with random
// delays while a reader follows the global log; the reader must see every
// event exactly once, in cursor order.
func testCatchUpReader(t *testing.T, h Harness) {
	writers, perWriter := 4, 25
	if h.OutOfOrderCommits {
		writers, perWriter = 16, 60
	}
	if testing.Short() {
		perWriter = 10
	}
	ctx := ctxFor(t)
	ts, hasTx := h.Store.(event.TxStore)

	appendOne := func(w, i int) (uuid.UUID, error) {
		st := fmt.Sprintf("test-catchup-%d-%d", w, rand.IntN(4))
		e := newEvent("test.catchup", i)
		delay := time.Duration(rand.IntN(3000)) * time.Microsecond
		if !hasTx {
			time.Sleep(delay)
			_, err := h.Store.Append(ctx, st, event.Any, []event.Event{e})
			return e.ID, err
		}
		tx, err := ts.DB().BeginTx(ctx, nil)
		if err != nil {
			return uuid.Nil, err
		}
		defer tx.Rollback() //nolint:errcheck // no-op after commit
		if _, err := ts.AppendTx(ctx, tx, st, event.Any, []event.Event{e}); err != nil {
			return uuid.Nil, err
		}
		time.Sleep(delay) // hold the transaction open so later positions commit first
		return e.ID, tx.Commit()
	}

	var (
		mu      sync.Mutex
		written = map[uuid.UUID]bool{}
		wg      sync.WaitGroup
		errs    = make(chan error, writers)
	)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				id, err := appendOne(w, i)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				written[id] = true
				mu.Unlock()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	seen := map[uuid.UUID]bool{}
	var cur event.Cursor
	read := func() {
		page, err := h.Store.ReadAll(ctx, cur, 7)
		if err != nil {
			t.Fatalf("catch-up read after %+v: %v", cur, err)
		}
		for _, e := range page {
			if seen[e.ID] {
				t.Fatalf("catch-up reader saw event %s twice", e.ID)
			}
			if !cur.Less(e.Cursor()) {
				t.Fatalf("catch-up reader went backwards: %+v after %+v", e.Cursor(), cur)
			}
			seen[e.ID] = true
			cur = e.Cursor()
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			read()
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Drain what committed after the last read. In PostgreSQL an unrelated
	// open transaction elsewhere in the cluster can hold the read horizon
	// back for a moment, so allow some time.
	for deadline := time.Now().Add(20 * time.Second); len(seen) < len(written) && time.Now().Before(deadline); {
		before := len(seen)
		read()
		if len(seen) == before {
			time.Sleep(10 * time.Millisecond)
		}
	}
	for id := range written {
		if !seen[id] {
			t.Errorf("catch-up reader skipped event %s", id)
		}
	}
	if len(seen) != len(written) {
		t.Errorf("reader saw %d events, writers committed %d", len(seen), len(written))
	}
}

// testGlobalStreamOrder: a transaction that started writing early (and so
// holds an older transaction id) appends to a stream after a younger
// transaction appended to it and committed. The global log must still list
// the stream's events in version order.
func testGlobalStreamOrder(t *testing.T, h Harness) {
	ts, ok := h.Store.(event.TxStore)
	if !ok || !h.OutOfOrderCommits {
		t.Skip("store commits one writer at a time")
	}
	ctx := ctxFor(t)
	st := stream(t)
	old, err := ts.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Rollback() //nolint:errcheck // no-op after commit
	if _, err := ts.AppendTx(ctx, old, stream(t), event.NoStream, events(1)); err != nil {
		t.Fatal(err)
	}
	first := mustAppend(t, ts, st, event.NoStream, events(1)...)
	second, err := ts.AppendTx(ctx, old, st, event.Exactly(1), events(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Commit(); err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, e := range readAll(t, ts, 100) {
		if e.StreamID == st {
			got = append(got, e.Version)
		}
	}
	if !slices.Equal(got, []int64{1, 2}) {
		t.Errorf("global log lists stream %s as versions %v (v1 %+v, v2 %+v), want [1 2]",
			st, got, first.Events[0].Cursor(), second.Events[0].Cursor())
	}
}
