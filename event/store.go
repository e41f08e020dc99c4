package event

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"strconv"

	"github.com/google/uuid"
)

// Store is an append-only event store.
//
// Implementations: store/postgres, store/sqlite, store/memory. Each passes
// the contract suite in event/eventtest.
type Store interface {
	// Append appends events to stream if its version satisfies expected,
	// atomically: all events or none.
	//
	// Event IDs are unique across the store. An append that repeats one
	// already stored (its events, or a first part of them, stored in
	// stream in the same order: see SkipStored) skips the stored events,
	// so an idempotent retry is a no-op; if every event is already stored,
	// Append succeeds without checking expected, and AppendResult.Skipped
	// counts them. An ID stored anywhere else (another stream, another
	// place in this one) fails the append with a *DuplicateEventIDError
	// (errors.Is(err, ErrDuplicateEventID)), storing nothing.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events []Event) (AppendResult, error)
	// Load yields the stream's events with Version >= from, in order.
	// A stream without events yields ErrStreamNotFound.
	Load(ctx context.Context, stream string, from int64) iter.Seq2[Event, error]
	// ReadAll returns up to limit events after the cursor, in global order.
	// It never skips an event: an event that commits later than a returned
	// one is still returned by a later call.
	ReadAll(ctx context.Context, after Cursor, limit int) ([]Event, error)
}

// TxStore is implemented by SQL stores: AppendTx appends inside the caller's
// transaction, so the caller's own writes commit with the events and their
// outbox rows. The caller commits or rolls back.
type TxStore interface {
	Store
	AppendTx(ctx context.Context, tx *sql.Tx, stream string, expected ExpectedVersion, events []Event) (AppendResult, error)
	// DB returns the database the store uses, for callers that begin the
	// transaction passed to AppendTx.
	DB() *sql.DB
	// Committed tells the store that a transaction in which AppendTx
	// wrote events has committed, so that its listeners (the outbox
	// relay, projections) wake at once. Call it after every such commit.
	// A store that sees commits by itself (PostgreSQL's NOTIFY) does
	// nothing; without the call, SQLite's listeners notice the events only
	// at their next poll.
	Committed()
}

// AppendResult describes a successful append.
type AppendResult struct {
	// Version is the stream's version after the append.
	Version int64
	// Events are the events as stored (IDs, versions and positions set).
	// Events skipped as already stored are not included.
	Events []Event
	// Skipped counts the events of the append that were already stored
	// (an idempotent retry): the first Skipped events of the append.
	Skipped int
}

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
// is a *DuplicateEventIDError. Stores call SkipStored with what they found
// under the append's lock.
func SkipStored(stream string, events []Event, stored map[uuid.UUID]StoredAt) ([]Event, error) {
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
			return nil, &DuplicateEventIDError{ID: e.ID, Stream: stream, Index: i,
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
// Stores call it before touching storage; it returns a copy of events.
func PrepareAppend(stream string, expected ExpectedVersion, events []Event) ([]Event, error) {
	if err := ValidateStreamID(stream); err != nil {
		return nil, err
	}
	if err := expected.Validate(); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, &ValidationError{Field: "events", Value: "[]", Reason: "append needs at least one event"}
	}
	out := make([]Event, len(events))
	seen := make(map[uuid.UUID]int, len(events))
	for i, e := range events {
		field := func(name string) string { return "events[" + strconv.Itoa(i) + "]." + name }
		if e.StreamID == "" {
			e.StreamID = stream
		}
		if e.StreamID != stream {
			return nil, &ValidationError{Field: field("StreamID"), Value: e.StreamID,
				Reason: fmt.Sprintf("all events of one append must belong to stream %q", stream)}
		}
		if e.StreamType != "" {
			// An empty StreamType is published under outbox.DefaultTopic's
			// fallback, "events".
			if err := validateStreamType(field("StreamType"), e.StreamType); err != nil {
				return nil, err
			}
		}
		if e.Type == "" {
			return nil, &ValidationError{Field: field("Type"), Value: "", Reason: "event type name must not be empty"}
		}
		if e.Data == nil {
			return nil, &ValidationError{Field: field("Data"), Value: "nil", Reason: "payload must not be nil"}
		}
		if e.SchemaVersion < 0 {
			return nil, &ValidationError{Field: field("SchemaVersion"), Value: strconv.Itoa(e.SchemaVersion), Reason: "schema version must be >= 1"}
		}
		if e.SchemaVersion == 0 {
			e.SchemaVersion = 1
		}
		if e.ID == uuid.Nil {
			e.ID = NewID()
		}
		if j, dup := seen[e.ID]; dup {
			return nil, &ValidationError{Field: field("ID"), Value: e.ID.String(),
				Reason: fmt.Sprintf("same ID as events[%d] in this append", j)}
		}
		seen[e.ID] = i
		for k := range e.Metadata.Extra {
			if !validExtraKey(k) {
				return nil, &ValidationError{Field: field("Metadata.Extra key"), Value: k,
					Reason: "user metadata keys travel as message headers: 1 to 200 printable ASCII characters without spaces or ':'"}
			}
		}
		e.Metadata = e.Metadata.Clone()
		out[i] = e
	}
	return out, nil
}

// ValidateLoad checks Load's arguments.
func ValidateLoad(stream string, from int64) error {
	if stream == "" {
		return &ValidationError{Field: "stream", Value: "", Reason: "stream ID must not be empty"}
	}
	if from < 1 {
		return &ValidationError{Field: "from version", Value: strconv.FormatInt(from, 10), Reason: "versions start at 1"}
	}
	return nil
}

// ValidateReadAll checks ReadAll's arguments.
func ValidateReadAll(after Cursor, limit int) error {
	if limit < 1 {
		return &ValidationError{Field: "limit", Value: strconv.Itoa(limit), Reason: "limit must be >= 1"}
	}
	if after.Position < 0 {
		return &ValidationError{Field: "cursor position", Value: strconv.FormatInt(after.Position, 10), Reason: "position must be >= 0"}
	}
	return nil
}

// ErrorSeq returns an iterator that yields only err.
func ErrorSeq(err error) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) { yield(Event{}, err) }
}

// StreamNotFoundError returns an error for a missing stream that satisfies
// errors.Is(err, ErrStreamNotFound) and names the stream.
func StreamNotFoundError(stream string) error {
	return fmt.Errorf("load stream %s: %w", stream, ErrStreamNotFound)
}

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
