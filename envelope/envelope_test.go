package envelope_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/messagebus"
)

func TestMessageRoundTrip(t *testing.T) {
	e := event.Event{
		ID: event.NewID(), StreamID: "thing-1", StreamType: "thing", Version: 3, Position: 42,
		Type: "thing.happened", SchemaVersion: 2, Data: []byte(`{"a":1}`),
		Metadata:   event.Metadata{CorrelationID: "c", TraceParent: "tp", Extra: map[string]string{"k": "v"}},
		RecordedAt: time.Date(2026, 11, 27, 10, 0, 0, 123, time.UTC),
	}
	m := envelope.Message(e, "thing")
	if m.ID != e.ID.String() || m.Key != "thing-1" || m.Topic != "thing" {
		t.Errorf("message = %+v", m)
	}
	if err := m.Validate(); err != nil {
		t.Errorf("envelope message does not validate: %v", err)
	}
	back, err := envelope.Event(m)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != e.ID || back.StreamID != e.StreamID || back.StreamType != e.StreamType || back.Version != 3 ||
		back.Position != 42 || back.Type != e.Type || back.SchemaVersion != 2 || string(back.Data) != string(e.Data) ||
		!back.RecordedAt.Equal(e.RecordedAt) || back.Metadata.CorrelationID != "c" || back.Metadata.Extra["k"] != "v" {
		t.Errorf("round trip = %+v, want %+v", back, e)
	}
	bad := []struct {
		name  string
		edit  func(*messagebus.Message)
		field string
	}{
		{"bad ID", func(m *messagebus.Message) { m.ID = "nope" }, "message ID"},
		{"no type", func(m *messagebus.Message) { delete(m.Headers, envelope.HeaderEventType) }, "header Cqrs-Event-Type"},
		{"bad version", func(m *messagebus.Message) { m.Headers[envelope.HeaderVersion] = "x" }, "header Cqrs-Stream-Version"},
		{"bad schema", func(m *messagebus.Message) { m.Headers[envelope.HeaderSchemaVersion] = "0" }, "header Cqrs-Schema-Version"},
		{"bad time", func(m *messagebus.Message) { m.Headers[envelope.HeaderRecordedAt] = "yesterday" }, "header Cqrs-Recorded-At"},
	}
	for _, tc := range bad {
		m := envelope.Message(e, "thing")
		tc.edit(&m)
		_, err := envelope.Event(m)
		var ve *event.ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("%s: got %v, want a validation error on %s", tc.name, err, tc.field)
		}
	}
}

// An event as the relay publishes it and as a consumer reads it back.
func Example() {
	e := event.Event{
		ID: event.NewID(), StreamID: "order-1", StreamType: "order", Version: 2, Position: 17,
		Type: "order.placed", SchemaVersion: 1, Data: []byte(`{"total":42}`),
		RecordedAt: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC),
	}
	m := envelope.Message(e, "order")
	fmt.Println(m.Key, m.Headers[envelope.HeaderEventType], m.Headers[envelope.HeaderVersion])
	back, err := envelope.Event(m)
	if err != nil {
		panic(err)
	}
	fmt.Println(back.ID == e.ID, back.StreamID, back.Version, string(back.Data))
	// Output:
	// order-1 order.placed 2
	// true order-1 2 {"total":42}
}
