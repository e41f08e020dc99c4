package store

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/event"
)

// Admin is the operator's view of a SQL store: its schema, streams,
// checkpoints and relay leases. *postgres.Store and *sqlite.Store
// implement it. None of its reads is on a hot path.
type Admin interface {
	// Migrate applies the embedded migrations the database lacks.
	Migrate(ctx context.Context) error
	// MigrationSQL returns the store's schema as plain SQL, for users who
	// apply migrations with their own tool.
	MigrationSQL() string
	// MigrationStatus returns the embedded migrations in order, each with
	// whether the database recorded it as applied. It only reads.
	MigrationStatus(ctx context.Context) ([]Migration, error)
	// TablesExist reports whether the store's events table exists, whether
	// Migrate created it or a user applied MigrationSQL by hand.
	TablesExist(ctx context.Context) (bool, error)

	// ListStreams returns up to limit streams whose ID sorts after after,
	// in stream ID order; pass the last ID returned to read the next page,
	// "" for the first.
	ListStreams(ctx context.Context, after string, limit int) ([]StreamInfo, error)
	// Head returns the cursor of the last event, the zero Cursor when the
	// store is empty.
	Head(ctx context.Context) (event.Cursor, error)
	// LiveCursor returns a cursor for following the log from now on
	// without skipping an event: ReadAll after it returns every event that
	// commits from now on.
	LiveCursor(ctx context.Context) (event.Cursor, error)

	// ListCheckpoints returns every projection checkpoint, by name.
	ListCheckpoints(ctx context.Context) ([]CheckpointInfo, error)
	// Processed reports whether handlerName's processed mark for eventID
	// exists: whether the handler has processed the event.
	Processed(ctx context.Context, handlerName string, eventID uuid.UUID) (bool, error)
	// RelayLeases returns what the store knows of the outbox relays'
	// leadership, by name: the session holding the advisory lock
	// (PostgreSQL), or the lease rows, expired ones included (SQLite).
	RelayLeases(ctx context.Context) ([]RelayLease, error)
}

// The JSON names of these types are those of the cqrskit CLI's JSON output.

// StreamInfo describes one stream, as Admin.ListStreams returns it.
type StreamInfo struct {
	StreamID   string `json:"stream_id"`
	StreamType string `json:"stream_type"`
	// Version is the stream's current version: its number of events.
	Version int64 `json:"version"`
	// UpdatedAt is when the stream's last event was recorded, in UTC.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Migration is one of the store's embedded migrations and whether the
// database has it.
type Migration struct {
	// Version is the migration's number, from its file name.
	Version int64 `json:"version"`
	// Name is the migration's file name, for example "00001_schema.sql".
	Name string `json:"name"`
	// Applied reports whether Migrate recorded the migration as applied.
	Applied bool `json:"applied"`
	// AppliedAt is when it was recorded, in UTC, as precisely as the
	// version table stores it (whole seconds in SQLite); zero when not
	// applied.
	AppliedAt time.Time `json:"applied_at,omitzero"`
}

// CheckpointInfo is one projection's stored checkpoint.
type CheckpointInfo struct {
	Name string `json:"name"`
	// Cursor is the position after the last event the projection applied.
	Cursor event.Cursor `json:"cursor"`
	// UpdatedAt is when the checkpoint was last saved, in UTC.
	UpdatedAt time.Time `json:"updated_at"`
}

// RelayLease describes an outbox relay's leadership: in PostgreSQL the
// session holding the relay's advisory lock, in SQLite a row of the relay
// leases.
type RelayLease struct {
	// Holder names the relay: the lease owner (SQLite, LeaderConfig.Owner)
	// or the database session holding the advisory lock (PostgreSQL).
	Holder string `json:"holder"`
	// Active reports whether the lease was held when read. It is false for
	// an expired SQLite lease: its relay stopped keeping it (crashed, or
	// paused), and no relay publishes under that name until a standby
	// takes it over.
	Active bool `json:"active"`

	// PostgreSQL: the lock session's backend process ID, application_name,
	// client address and role ("" where unset or hidden from this role),
	// and when the session connected, in UTC (PostgreSQL does not record
	// when the lock was taken).
	PID          int       `json:"pid,omitempty"`
	Application  string    `json:"application,omitempty"`
	ClientAddr   string    `json:"client_addr,omitempty"`
	User         string    `json:"user,omitempty"`
	SessionStart time.Time `json:"session_start,omitzero"`

	// SQLite: the lease's name ("outbox" unless LeaderConfig.Name says
	// else), and when it lapses unless its owner keeps it, in UTC.
	// Released leases are deleted.
	Name      string    `json:"name,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}
