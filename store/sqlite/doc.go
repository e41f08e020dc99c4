// Package sqlite is cqrskit's embedded default store: the event store,
// outbox, snapshots and the tables of idempotent handlers, dead letters,
// projection checkpoints and relay leases, in one SQLite database file,
// through the pure-Go driver modernc.org/sqlite (no cgo).
//
//	store, err := sqlite.Open(ctx, "data/events.db", sqlite.Config{})
//	...
//	err = store.Migrate(ctx)
//
// A *Store implements event.Store and event.TxStore, es.SnapshotStore,
// outbox.Store and outbox.Notifier.
//
// # Opening
//
// Open sets the pragmas the store relies on: WAL (readers never block the
// writer), synchronous=NORMAL (durable across process crashes; a power cut
// may lose the last commits, never corrupt the file), foreign keys, a 30 s
// busy timeout, and _txlock=immediate, so every transaction takes SQLite's
// single write lock when it begins. New takes a database the caller opened;
// give it the same settings. In-memory databases are not supported: each
// pooled connection would see its own; use a file in a temporary directory.
//
// # Schema
//
// Migrate applies the embedded, versioned migrations with goose, recording
// them in <prefix>schema_version; it is safe on every start. Tables are
// named with Config.TablePrefix ("cqrs_" by default), so they can share a
// file with the application's tables. MigrationSQL prints the schema for
// users who run their own migration tool. Times are stored as INTEGER Unix
// nanoseconds in UTC.
//
// # Appending
//
// SQLite has one writer at a time. Append queues for it in process, begins
// IMMEDIATE, checks the expected version, inserts the events and one outbox
// row per event, moves the stream's version, commits, and wakes the relay.
// Concurrent appenders therefore wait for their turn instead of failing with
// SQLITE_BUSY; a version conflict is an *event.ConcurrencyError, and
// UNIQUE(stream_id, version) turns any race that slips past the check into
// the same error, never a raw driver error. Events whose IDs are stored
// already are skipped, so a retried append is a no-op.
//
// AppendTx does the same inside the caller's transaction (begun on DB()),
// so the caller's own writes commit with the events. It works inside a
// savepoint: a failed AppendTx leaves nothing of itself in the transaction.
// The store cannot see the caller's commit, so the caller calls Committed after
// committing to wake the relay at once; without it the relay finds the rows
// at its next poll.
//
// # Reading
//
// Load pages through a stream (1,000 events a query, no transaction held
// between pages). Because writes are serial, positions commit in order and
// ReadAll can read "position > cursor" without ever skipping an event;
// Event.TxID is always 0.
//
// # What it does not do
//
// A database file serves one machine. Several processes may share it (the
// busy timeout queues their writers), but the in-process queue and the
// Listen wake-ups work within one process only: other processes' relays
// fall back to polling. For several machines use store/postgres.
package sqlite
