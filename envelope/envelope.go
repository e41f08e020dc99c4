package envelope

import (
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/messagebus"
)

// Message headers that carry the event's envelope, besides its metadata
// (see event.Metadata.Headers).
const (
	HeaderEventType     = "Cqrs-Event-Type"
	HeaderSchemaVersion = "Cqrs-Schema-Version"
	HeaderStreamID      = "Cqrs-Stream-Id"
	HeaderStreamType    = "Cqrs-Stream-Type"
	HeaderVersion       = "Cqrs-Stream-Version"
	HeaderPosition      = "Cqrs-Position"
	HeaderRecordedAt    = "Cqrs-Recorded-At"
)

// Message turns an event into the broker message the outbox relay
// publishes: the event ID as message ID (the broker's de-duplication key),
// the stream ID as key (ordering), the payload as body, and metadata plus
// envelope fields as headers. Consumers rebuild the event with Event.
func Message(e event.Event, topic string) messagebus.Message {
	h := e.Metadata.Headers()
	h[HeaderEventType] = e.Type
	h[HeaderSchemaVersion] = strconv.Itoa(e.SchemaVersion)
	h[HeaderStreamID] = e.StreamID
	h[HeaderStreamType] = e.StreamType
	h[HeaderVersion] = strconv.FormatInt(e.Version, 10)
	h[HeaderPosition] = strconv.FormatInt(e.Position, 10)
	h[HeaderRecordedAt] = e.RecordedAt.UTC().Format(time.RFC3339Nano)
	return messagebus.Message{ID: e.ID.String(), Topic: topic, Key: e.StreamID, Payload: e.Data, Headers: h}
}

// Event rebuilds the event that Message turned into m. It fails with a
// *event.ValidationError naming the header that is missing or malformed.
func Event(m messagebus.Message) (event.Event, error) {
	bad := func(field, value, reason string) (event.Event, error) {
		return event.Event{}, &event.ValidationError{Field: field, Value: value, Reason: reason}
	}
	id, err := uuid.Parse(m.ID)
	if err != nil {
		return bad("message ID", m.ID, "want the event's UUID")
	}
	h := m.Headers
	e := event.Event{
		ID:         id,
		StreamID:   h[HeaderStreamID],
		StreamType: h[HeaderStreamType],
		Type:       h[HeaderEventType],
		Data:       m.Payload,
		Metadata:   event.MetadataFromHeaders(h),
	}
	if e.StreamID == "" {
		e.StreamID = m.Key
	}
	if e.Type == "" {
		return bad("header "+HeaderEventType, "", "the event type name is required")
	}
	if e.Data == nil {
		e.Data = []byte{}
	}
	ints := []struct {
		header string
		dst    *int64
	}{{HeaderVersion, &e.Version}, {HeaderPosition, &e.Position}}
	for _, f := range ints {
		if v, ok := h[f.header]; ok {
			if *f.dst, err = strconv.ParseInt(v, 10, 64); err != nil {
				return bad("header "+f.header, v, "want an integer")
			}
		}
	}
	e.SchemaVersion = 1
	if v, ok := h[HeaderSchemaVersion]; ok {
		if e.SchemaVersion, err = strconv.Atoi(v); err != nil || e.SchemaVersion < 1 {
			return bad("header "+HeaderSchemaVersion, v, "want an integer >= 1")
		}
	}
	if v, ok := h[HeaderRecordedAt]; ok {
		if e.RecordedAt, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return bad("header "+HeaderRecordedAt, v, fmt.Sprintf("want an RFC 3339 time: %v", err))
		}
	}
	return e, nil
}
