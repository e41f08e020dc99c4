package outbox

import (
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/messagebus"
)

// EventFromMessage rebuilds the event a relay published (see Message). It
// fails with a *event.ValidationError naming the header that is missing or
// malformed.
func EventFromMessage(m messagebus.Message) (event.Event, error) {
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
