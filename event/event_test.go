package event_test

import (
	"errors"
	"maps"
	"testing"

	"github.com/cqrskit/cqrskit/event"
)

func TestExpectedVersionCheck(t *testing.T) {
	cases := []struct {
		exp     event.ExpectedVersion
		current int64
		ok      bool
	}{
		{event.Any, 0, true}, {event.Any, 9, true},
		{event.NoStream, 0, true}, {event.NoStream, 1, false},
		{event.StreamExists, 0, false}, {event.StreamExists, 4, true},
		{event.Exactly(3), 3, true}, {event.Exactly(3), 2, false}, {event.Exactly(3), 0, false},
	}
	for _, tc := range cases {
		err := tc.exp.Check("s-1", tc.current)
		if (err == nil) != tc.ok {
			t.Errorf("%s at %d: %v, want ok=%v", tc.exp, tc.current, err, tc.ok)
		}
		var ce *event.ConcurrencyError
		if err != nil && (!errors.As(err, &ce) || ce.Actual != tc.current || ce.Stream != "s-1" || ce.Expected != tc.exp) {
			t.Errorf("%s at %d: detail %+v", tc.exp, tc.current, ce)
		}
	}
	if err := event.Exactly(0).Validate(); !errors.Is(err, event.ErrInvalidEvent) {
		t.Errorf("Exactly(0).Validate() = %v", err)
	}
	if n, ok := event.Exactly(5).Exact(); n != 5 || !ok {
		t.Errorf("Exact() = %d, %v", n, ok)
	}
}

func TestMetadataHeadersRoundTrip(t *testing.T) {
	md := event.Metadata{CorrelationID: "c", CausationID: "d", TraceParent: "tp", TraceState: "ts",
		Extra: map[string]string{"tenant": "acme", "user": "u1"}}
	h := md.Headers()
	if h["traceparent"] != "tp" || h["Cqrs-X-tenant"] != "acme" {
		t.Errorf("headers = %v", h)
	}
	h["Unrelated"] = "x"
	got := event.MetadataFromHeaders(h)
	if got.CorrelationID != "c" || got.CausationID != "d" || got.TraceParent != "tp" || got.TraceState != "ts" || !maps.Equal(got.Extra, md.Extra) {
		t.Errorf("round trip = %+v, want %+v", got, md)
	}
	if len(event.Metadata{}.Headers()) != 0 {
		t.Error("empty metadata produced headers")
	}
}

func TestCursorOrder(t *testing.T) {
	a, b, c := event.Cursor{TxID: 1, Position: 9}, event.Cursor{TxID: 2, Position: 3}, event.Cursor{TxID: 2, Position: 4}
	if !a.Less(b) || !b.Less(c) || c.Less(a) || a.Less(a) {
		t.Error("cursor order is not (TxID, Position)")
	}
}
