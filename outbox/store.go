package outbox

import (
	"context"
	"time"

	"github.com/cqrskit/cqrskit/event"
)

// Record is one outbox row: an event waiting to be published. SQL stores
// write one per appended event in the append's transaction.
type Record struct {
	// ID is the outbox row ID; rows are published in ID order.
	ID    int64
	Event event.Event
}

// Stats describes the unpublished backlog.
type Stats struct {
	// Backlog counts rows waiting to be published, parked ones excluded.
	Backlog int64
	// OldestAt is when the oldest unpublished row was written; zero when
	// the backlog is empty.
	OldestAt time.Time
	// Parked counts rows the broker rejected for good (see Store.Park);
	// each holds its stream back until an operator retries or discards it.
	Parked int64
}

// Store is the outbox side of an event store, consumed by the Relay.
type Store interface {
	// Pending returns up to limit unpublished records in ID order, leaving
	// out every record of a stream that has a parked record: those wait
	// behind it, so that the stream's order holds.
	Pending(ctx context.Context, limit int) ([]Record, error)
	// Delete removes published records. Unknown IDs are ignored.
	Delete(ctx context.Context, ids []int64) error
	// Park moves the record with outbox ID id out of the outbox into the
	// parked records, with reason (the broker's error), in one
	// transaction. A parked record holds back its stream's later records
	// until it is retried or discarded (see ParkedStore). Parking an
	// unknown ID is a no-op.
	Park(ctx context.Context, id int64, reason string) error
	// Stats returns the backlog size, the age of its oldest row and the
	// number of parked rows.
	Stats(ctx context.Context) (Stats, error)
}

// ParkedRecord is an outbox record the broker rejected for good.
type ParkedRecord struct {
	Record
	// Reason is the broker's error when it was parked.
	Reason string
	// ParkedAt is when the relay parked it.
	ParkedAt time.Time
}

// ParkedStore is the operator's side of parked records: the admin CLI's
// `cqrskit outbox parked list|retry|discard`. The SQL stores and the
// memory store implement it.
type ParkedStore interface {
	// Parked lists up to limit parked records with an outbox ID above
	// after, in ID order.
	Parked(ctx context.Context, after int64, limit int) ([]ParkedRecord, error)
	// RetryParked moves the parked records with the given outbox IDs back
	// into the outbox under their old IDs, so they are published first
	// in their streams, and returns how many it moved.
	RetryParked(ctx context.Context, ids []int64) (int, error)
	// DiscardParked deletes the parked records with the given outbox IDs
	// and returns how many it deleted: their events stay in the store but
	// are never published, and their streams' later records flow again.
	DiscardParked(ctx context.Context, ids []int64) (int, error)
}
