// Package es is the event-sourcing core: the Aggregate contract, its
// embeddable Base, and Repository[T], which loads aggregates by replaying
// their stream (from a snapshot when one is usable) and saves their new
// events with optimistic concurrency.
//
// # Aggregates
//
// An aggregate is a pointer to a struct that embeds Base and implements
// Apply. Commands are methods that check the business rules against the
// current state and then call Raise, which applies the event and records it
// as uncommitted:
//
//	func (a *Account) Withdraw(amount int64) error {
//		if amount > a.Balance {
//			return ErrInsufficientFunds
//		}
//		return es.Raise(a, Withdrawn{Amount: amount})
//	}
//
// Apply only changes state: it runs again for every stored event each time
// the aggregate is loaded. Event payloads are plain structs registered in
// an event.Registry under stable names.
//
// # Saving and concurrency
//
// Save appends the uncommitted events expecting the stream at the version
// the aggregate was loaded at (event.NoStream for a new one). If another
// writer got there first the error satisfies
// errors.Is(err, event.ErrConcurrencyConflict) and nothing is stored.
// Create runs a command on a new aggregate and saves it, failing with a
// conflict if the aggregate already exists. Update wraps load, command and
// save, and repeats the whole cycle on a conflict (UpdateRetries times), so
// the command always decides on current state. SaveTx and UpdateTx append inside the caller's *sql.Tx, so the
// caller's own writes commit with the events and their outbox rows; they
// need a store implementing event.TxStore.
//
// # Metadata
//
// Request-scoped metadata (correlation and causation IDs, user keys) rides
// on the context: WithMetadata(ctx, md) before Save or Update, and every
// event of that save carries it. The W3C trace context of the active
// OpenTelemetry span is added, so a trace follows the event to its
// consumers. WithExtra adds a key to one event only.
//
// # Snapshots
//
// With RepositoryConfig.Snapshots set, the repository stores the aggregate's
// state every so often (SnapshotPolicy, EveryN(100) by default) and Load
// starts from it, replaying only later events. A snapshot is the aggregate
// encoded with encoding/json: its exported fields are the snapshot, and
// Base's bookkeeping is restored by the repository. Aggregates whose state
// is unexported implement SnapshotMarshaler instead.
//
// Snapshots are a cache, never the truth. Each carries
// RepositoryConfig.SnapshotVersion; bump it when the aggregate's fields
// change. A snapshot of another version, one that fails to decode (unknown
// fields included) or one the store cannot read is ignored with a logged
// warning and the stream is replayed in full; with no usable snapshot
// known, EveryN takes a fresh one right after that replay. A failure to store a snapshot is logged and never fails a save,
// whose events are already committed.
//
// # Observability
//
// The repository records OpenTelemetry spans and metrics through
// RepositoryConfig.TracerProvider and MeterProvider (the global providers
// by default; the package uses the OpenTelemetry API only, never the SDK).
//
// Spans: es.Load, es.LoadAt, es.Save, es.SaveTx, es.Create, es.Update and
// es.UpdateTx around each call, and es.Append inside them around the
// store's append (attributes cqrskit.stream.id,
// cqrskit.stream.expected_version, cqrskit.event.count). The events of a
// save carry es.Append's W3C trace context in their metadata, unless the
// context's metadata sets one: the outbox relay continues the trace from
// there.
//
// Metrics, each with cqrskit.stream_type:
//
//	cqrskit.es.appends           counter   {append}    appends, by cqrskit.outcome: ok, conflict, error
//	cqrskit.es.append.duration   histogram s           the store's append time, by cqrskit.outcome
//	cqrskit.es.append.conflicts  counter   {conflict}  appends rejected with event.ErrConcurrencyConflict
//	cqrskit.es.events.appended   counter   {event}     events stored by successful appends
//
// Update counts every attempt, so its retried conflicts show.
//
// # What is not guaranteed
//
// An aggregate value is not safe for concurrent use; load one per request.
// Raise cannot undo what a failing Apply changed before it failed. After a
// SaveTx whose transaction rolls back, the aggregate's version is wrong:
// load it again.
package es
