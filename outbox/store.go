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
	Backlog int64
	// OldestAt is when the oldest unpublished row was written; zero when
	// the backlog is empty.
	OldestAt time.Time
}

// Store is the outbox side of an event store, consumed by the Relay.
type Store interface {
	// Pending returns up to limit unpublished records in ID order.
	Pending(ctx context.Context, limit int) ([]Record, error)
	// Delete removes published records. Unknown IDs are ignored.
	Delete(ctx context.Context, ids []int64) error
	// Stats returns the backlog size and the age of its oldest row.
	Stats(ctx context.Context) (Stats, error)
}
