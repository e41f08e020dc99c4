package es

import (
	"context"
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
