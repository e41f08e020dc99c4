package event

import (
	"time"

	"github.com/google/uuid"
)

// Event is the stored envelope of one domain event.
//
// Data holds the encoded payload (JSON with the default codec); a Registry
// turns it into the registered Go type. Fields set by the store on append
// (Version, Position, TxID, RecordedAt) are ignored on input.
type Event struct {
	// ID identifies the event everywhere: in the store, the outbox, the broker
	// (as its de-duplication ID) and in consumers' processed marks. A zero ID
	// is replaced by a new UUIDv7 on append.
	ID uuid.UUID
	// StreamID names the stream, for example "product-0190...". An empty
	// StreamID on append means the stream appended to.
	StreamID string
	// StreamType is the aggregate type, for example "product".
	StreamType string
	// Version is the event's 1-based position within its stream.
	Version int64
	// Position is the global position the store assigned. Positions are
	// unique and increase, but in PostgreSQL they may commit out of order;
	// read the global log with Store.ReadAll and a Cursor, never with
	// "position > last".
	Position int64
	// TxID is the store's commit group (PostgreSQL's transaction id). Zero in
	// stores that commit one writer at a time.
	TxID uint64
	// Type is the stable registered name of the payload, for example
	// "product.created".
	Type string
	// SchemaVersion is the payload's schema version; upcasters turn older
	// versions into the current one on read. Zero is stored as 1.
	SchemaVersion int
	// Data is the encoded payload. It must not be nil.
	Data []byte
	// Metadata travels with the event through outbox and broker.
	Metadata Metadata
	// RecordedAt is the store's commit clock, in UTC.
	RecordedAt time.Time
}

// Cursor returns the position in the global log just after e: pass it to
// Store.ReadAll to continue reading after e.
func (e Event) Cursor() Cursor { return Cursor{TxID: e.TxID, Position: e.Position} }

// Cursor is a position in the global log, ordered by (TxID, Position). The
// zero Cursor is the start of the log.
type Cursor struct {
	TxID     uint64
	Position int64
}

// Less reports whether c orders before d.
func (c Cursor) Less(d Cursor) bool {
	if c.TxID != d.TxID {
		return c.TxID < d.TxID
	}
	return c.Position < d.Position
}

// NewID returns a new UUIDv7 event ID.
func NewID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only when the system random source fails; uuid.New
		// would panic in the same case.
		return uuid.New()
	}
	return id
}
