package es

import (
	"context"
	"database/sql"
	"time"
)

// Snapshot is the stored state of an aggregate at a version.
type Snapshot struct {
	StreamID string
	// Version is the aggregate's stream version the state includes.
	Version int64
	// SchemaVersion is the aggregate's snapshot schema version when it was
	// taken; a snapshot of another version is ignored on load.
	SchemaVersion int
	Data          []byte
	CreatedAt     time.Time
}

// SnapshotStore keeps the latest snapshot per stream. store/postgres,
// store/sqlite and store/memory implement it.
type SnapshotStore interface {
	// SaveSnapshot stores s unless a snapshot of a higher version is already
	// stored for the stream.
	SaveSnapshot(ctx context.Context, s Snapshot) error
	// LoadSnapshot returns the stream's snapshot; ok is false when there is
	// none.
	LoadSnapshot(ctx context.Context, stream string) (s Snapshot, ok bool, err error)
}

// SnapshotTxStore is a SnapshotStore that can write inside a transaction
// (store/postgres, store/sqlite). SaveTx and UpdateTx take their snapshot
// with SaveSnapshotTx in the caller's transaction, so it commits or rolls
// back with the events it includes and waits for no other connection
// (SQLite admits one writer, and the caller's transaction is it). They do
// so only when DB is the event store's database; with a snapshot store
// that is not a SnapshotTxStore they take none, and the next Save or Load
// takes it.
type SnapshotTxStore interface {
	SnapshotStore
	// SaveSnapshotTx is SaveSnapshot inside tx. A failure leaves tx
	// usable: the snapshot is only a shortcut.
	SaveSnapshotTx(ctx context.Context, tx *sql.Tx, s Snapshot) error
	// DB returns the database SaveSnapshotTx expects tx to belong to.
	DB() *sql.DB
}
