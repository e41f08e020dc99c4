package projection

import (
	"context"
	"database/sql"

	"github.com/cqrskit/cqrskit/event"
)

// CheckpointStore keeps each projection's position in the global log, in
// the same transaction as its read-model writes. store/postgres and
// store/sqlite implement it.
type CheckpointStore interface {
	// DB is the database the read models live in; a projection's
	// transactions are begun on it.
	DB() *sql.DB
	// Checkpoint returns the projection's cursor in tx, the zero Cursor when
	// it has none, and locks it against a concurrent runner of the same
	// projection until tx ends (SELECT ... FOR UPDATE where supported). It
	// must lock also when there is no checkpoint yet, for example by
	// inserting a zero one first: two runners starting from nothing must
	// not both apply the first batch.
	Checkpoint(ctx context.Context, tx *sql.Tx, name string) (event.Cursor, error)
	// SaveCheckpoint stores the cursor in tx.
	SaveCheckpoint(ctx context.Context, tx *sql.Tx, name string, c event.Cursor) error
	// DeleteCheckpoint removes it in tx (a rebuild starts from zero).
	DeleteCheckpoint(ctx context.Context, tx *sql.Tx, name string) error
}

// Counter is implemented by stores that can count events after a cursor;
// a rebuild uses it to show done/total, and Status to show the lag.
type Counter interface {
	CountEvents(ctx context.Context, after event.Cursor) (int64, error)
}

// Notifier wakes a projection when new events commit, so it need not poll.
// It has the shape of outbox.Notifier: a store implementing one implements
// both.
type Notifier interface {
	// Listen returns a channel that receives a value (coalesced) after new
	// events commit, until ctx ends.
	Listen(ctx context.Context) (<-chan struct{}, error)
}
