package eventtest

import (
	"context"
	"fmt"
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
