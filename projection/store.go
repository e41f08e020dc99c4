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
	DB() *sql.DB
	// Checkpoint returns the projection's cursor in tx, the zero Cursor when
	// it has none, and locks it against a concurrent runner of the same
	// projection until tx ends (SELECT ... FOR UPDATE where supported).
	Checkpoint(ctx context.Context, tx *sql.Tx, name string) (event.Cursor, error)
	// SaveCheckpoint stores the cursor in tx.
	SaveCheckpoint(ctx context.Context, tx *sql.Tx, name string, c event.Cursor) error
	// DeleteCheckpoint removes it in tx (a rebuild starts from zero).
	DeleteCheckpoint(ctx context.Context, tx *sql.Tx, name string) error
}

// Counter is implemented by stores that can count events after a cursor;
// a rebuild uses it to show done/total.
type Counter interface {
	CountEvents(ctx context.Context, after event.Cursor) (int64, error)
}
