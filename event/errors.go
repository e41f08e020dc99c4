package event

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
)

var (
	// ErrConcurrencyConflict: the stream was not at the expected version.
	// The error is a *ConcurrencyError with the detail.
	ErrConcurrencyConflict = errors.New("concurrency conflict")
	// ErrStreamNotFound: the stream has no events.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrInvalidEvent: an argument was rejected before anything was stored.
	// The error is a *ValidationError naming the field.
	ErrInvalidEvent = errors.New("invalid event")
	// ErrUnknownEventType: the registry has no type for a stored event name.
	ErrUnknownEventType = errors.New("unknown event type")
	// ErrDecode: a stored payload could not be decoded or upcast.
	ErrDecode = errors.New("cannot decode event")
	// ErrDuplicateEventID: an appended event's ID is already stored in
	// another stream, or elsewhere in this stream than a retry of the same
	// append would put it. Nothing of the append is stored. The error is a
	// *DuplicateEventIDError naming both places.
	ErrDuplicateEventID = errors.New("duplicate event ID")
	// ErrRetryable: the database aborted the operation for a reason that
	// running the whole transaction again may cure (PostgreSQL's
	// serialization failure, SQLSTATE 40001, under REPEATABLE READ or
	// SERIALIZABLE; a deadlock, 40P01). Nothing of the operation is
	// stored; a caller's transaction is aborted and must be rolled back.
	ErrRetryable = errors.New("transaction aborted by the database; retry it")
)

// DuplicateEventIDError reports an event whose ID is already stored at
// another place. It satisfies errors.Is(err, ErrDuplicateEventID).
type DuplicateEventIDError struct {
	ID uuid.UUID
	// Stream is the stream appended to; Index the event's index in the
	// append.
	Stream string
	Index  int
	// StoredStream and StoredVersion locate the stored event with that ID.
	StoredStream  string
	StoredVersion int64
}

func (e *DuplicateEventIDError) Error() string {
	if e.StoredStream == e.Stream {
		return fmt.Sprintf("append to stream %s: events[%d] has ID %s, already stored in this stream at version %d, out of the order of this append: %v",
			e.Stream, e.Index, e.ID, e.StoredVersion, ErrDuplicateEventID)
	}
	return fmt.Sprintf("append to stream %s: events[%d] has ID %s, already stored in stream %s at version %d: %v",
		e.Stream, e.Index, e.ID, e.StoredStream, e.StoredVersion, ErrDuplicateEventID)
}

func (e *DuplicateEventIDError) Is(target error) bool { return target == ErrDuplicateEventID }

// ConcurrencyError is returned when an append's expected version does not
// match the stream. It satisfies errors.Is(err, ErrConcurrencyConflict).
type ConcurrencyError struct {
	Stream   string
	Expected ExpectedVersion
	Actual   int64 // 0: the stream has no events
}

func (e *ConcurrencyError) Error() string {
	return fmt.Sprintf("append to stream %s: expected %s, stream is at version %d: %v",
		e.Stream, e.Expected, e.Actual, ErrConcurrencyConflict)
}

func (e *ConcurrencyError) Is(target error) bool { return target == ErrConcurrencyConflict }

// ValidationError names the field and value that made an input invalid.
// It satisfies errors.Is(err, ErrInvalidEvent).
type ValidationError struct {
	Field  string // for example "events[2].StreamID"
	Value  string // the offending value, quoted as given
	Reason string // what was expected
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("%v: %s %q: %s", ErrInvalidEvent, e.Field, e.Value, e.Reason)
}

func (e *ValidationError) Is(target error) bool { return target == ErrInvalidEvent }

// DecodeError reports an event that could not be turned into its Go type.
// It satisfies errors.Is(err, ErrDecode), and ErrUnknownEventType when the
// name is not registered.
type DecodeError struct {
	EventID       string
	Stream        string
	Version       int64
	Type          string
	SchemaVersion int
	Err           error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decode event %s (%s v%d, stream %s version %d): %v",
		e.EventID, e.Type, e.SchemaVersion, e.Stream, e.Version, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

func (e *DecodeError) Is(target error) bool { return target == ErrDecode }
