package driver

import (
	"errors"
	"fmt"
	"iter"
	"strconv"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/event"
)

// StoredAt locates an event already in a store.
type StoredAt struct {
	Stream  string
	Version int64
}

// SkipStored applies the store's duplicate-ID rule to an append of events
// (as returned by PrepareAppend) to stream. stored maps the IDs among
// events that are already in the store to where they are; it may be nil.
//
// The stored events must be a retry: the first events of the append,
// stored in stream at consecutive versions in the append's order. They are
// skipped and the rest returned (none for a whole retry). Any other stored
// ID (in another stream, after an event not yet stored, or out of order)
// is an *event.DuplicateEventIDError. Stores call SkipStored with what they
// found under the append's lock.
func SkipStored(stream string, events []event.Event, stored map[uuid.UUID]StoredAt) ([]event.Event, error) {
	if len(stored) == 0 {
		return events, nil
	}
	k := 0 // events[:k] are stored, in order
	var first int64
	for i, e := range events {
		at, ok := stored[e.ID]
		if !ok {
			continue
		}
		if at.Stream != stream || i != k || (i > 0 && at.Version != first+int64(i)) {
			return nil, &event.DuplicateEventIDError{ID: e.ID, Stream: stream, Index: i,
				StoredStream: at.Stream, StoredVersion: at.Version}
		}
		if i == 0 {
			first = at.Version
		}
		k++
	}
	return events[k:], nil
}

// PrepareAppend validates an append and fills defaults: a zero ID becomes a
// new UUIDv7, an empty StreamID becomes stream, SchemaVersion 0 becomes 1.
// Stores call it before touching storage; it returns a copy of events. An
// invalid append is an *event.ValidationError naming the field.
func PrepareAppend(stream string, expected event.ExpectedVersion, events []event.Event) ([]event.Event, error) {
	if err := event.ValidateStreamID(stream); err != nil {
		return nil, err
	}
	if err := expected.Validate(); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, &event.ValidationError{Field: "events", Value: "[]", Reason: "append needs at least one event"}
	}
	out := make([]event.Event, len(events))
	seen := make(map[uuid.UUID]int, len(events))
	for i, e := range events {
		field := func(name string) string { return "events[" + strconv.Itoa(i) + "]." + name }
		if e.StreamID == "" {
			e.StreamID = stream
		}
		if e.StreamID != stream {
			return nil, &event.ValidationError{Field: field("StreamID"), Value: e.StreamID,
				Reason: fmt.Sprintf("all events of one append must belong to stream %q", stream)}
		}
		if e.StreamType != "" {
			// An empty StreamType is published under outbox.DefaultTopic's
			// fallback, "events".
			if err := event.ValidateStreamType(e.StreamType); err != nil {
				var ve *event.ValidationError
				if errors.As(err, &ve) {
					ve.Field = field("StreamType")
				}
				return nil, err
			}
		}
		if e.Type == "" {
			return nil, &event.ValidationError{Field: field("Type"), Value: "", Reason: "event type name must not be empty"}
		}
		if e.Data == nil {
			return nil, &event.ValidationError{Field: field("Data"), Value: "nil", Reason: "payload must not be nil"}
		}
		if e.SchemaVersion < 0 {
			return nil, &event.ValidationError{Field: field("SchemaVersion"), Value: strconv.Itoa(e.SchemaVersion), Reason: "schema version must be >= 1"}
		}
		if e.SchemaVersion == 0 {
			e.SchemaVersion = 1
		}
		if e.ID == uuid.Nil {
			e.ID = event.NewID()
		}
		if j, dup := seen[e.ID]; dup {
			return nil, &event.ValidationError{Field: field("ID"), Value: e.ID.String(),
				Reason: fmt.Sprintf("same ID as events[%d] in this append", j)}
		}
		seen[e.ID] = i
		for k := range e.Metadata.Extra {
			if !validExtraKey(k) {
				return nil, &event.ValidationError{Field: field("Metadata.Extra key"), Value: k,
					Reason: "user metadata keys travel as message headers: 1 to 200 printable ASCII characters without spaces or ':'"}
			}
		}
		e.Metadata = e.Metadata.Clone()
		out[i] = e
	}
	return out, nil
}

// ValidateLoad checks the arguments of event.Store's Load.
func ValidateLoad(stream string, from int64) error {
	if stream == "" {
		return &event.ValidationError{Field: "stream", Value: "", Reason: "stream ID must not be empty"}
	}
	if from < 1 {
		return &event.ValidationError{Field: "from version", Value: strconv.FormatInt(from, 10), Reason: "versions start at 1"}
	}
	return nil
}

// ValidateReadAll checks the arguments of event.Store's ReadAll.
func ValidateReadAll(after event.Cursor, limit int) error {
	if limit < 1 {
		return &event.ValidationError{Field: "limit", Value: strconv.Itoa(limit), Reason: "limit must be >= 1"}
	}
	if after.Position < 0 {
		return &event.ValidationError{Field: "cursor position", Value: strconv.FormatInt(after.Position, 10), Reason: "position must be >= 0"}
	}
	return nil
}

// ErrorSeq returns an iterator that yields only err, for a Load that fails
// before it reads anything.
func ErrorSeq(err error) iter.Seq2[event.Event, error] {
	return func(yield func(event.Event, error) bool) { yield(event.Event{}, err) }
}

// StreamNotFoundError returns an error for a missing stream that satisfies
// errors.Is(err, event.ErrStreamNotFound) and names the stream.
func StreamNotFoundError(stream string) error {
	return fmt.Errorf("load stream %s: %w", stream, event.ErrStreamNotFound)
}

// validExtraKey reports whether k can travel as a message header name
// (event.Metadata.Headers prefixes it).
func validExtraKey(k string) bool {
	if k == "" || len(k) > 200 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}
