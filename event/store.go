package event

import (
	"context"
	"database/sql"
	"iter"
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
	// stream in the same order: see driver.SkipStored) skips the stored events,
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
