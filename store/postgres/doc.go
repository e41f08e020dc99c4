// Package postgres is the PostgreSQL event store: events, streams,
// snapshots and the outbox, plus the tables the handler and projection
// packages use (processed marks, dead letters, checkpoints, relay leases).
// It works through database/sql; pgx's stdlib driver is the tested one.
//
//	db, _ := sql.Open("pgx", url)
//	store, err := postgres.New(db, postgres.Config{})
//	err = store.Migrate(ctx)
//	res, err := store.Append(ctx, "product-42", event.NoStream, events)
//
// *Store implements event.Store, event.TxStore, es.SnapshotStore and
// outbox.Store, and passes the contract suite in event/eventtest. It also
// implements handler.Store (processed marks, dead letters),
// projection.CheckpointStore and projection.Counter, and store.Admin for
// operators (the cqrskit CLI).
//
// # Schema and migrations
//
// The tables are created by versioned SQL files embedded in the package and
// applied with goose by Store.Migrate (and by `cqrskit migrate up`), under
// an advisory lock so that processes starting together take turns. Config
// places them in a schema and names them with a prefix (cqrs_events,
// cqrs_outbox, ... by default); goose's version table is
// <prefix>schema_version. Users with their own migration tool apply the
// text of MigrationSQL instead. A store used before its tables exist
// returns errors wrapping ErrNotMigrated.
//
// # Appends
//
// An append is a single SQL statement, so it needs one round trip and no
// explicit transaction: it advances the stream row only if the stream is
// at the expected version and none of the event IDs is stored yet (a
// compare-and-set that also locks the row until commit), then inserts the
// events and one outbox row per event. When the check fails nothing is
// written and no position is drawn; a second query tells a conflict
// (a *event.ConcurrencyError with the stream, expected and actual
// versions) from a retry of events already stored (skipped; if all are
// stored the append succeeds as a no-op). UNIQUE (stream_id, version)
// backs up the row lock and surfaces as a conflict too.
//
// AppendTx runs the same statement in the caller's *sql.Tx: the caller's
// own writes, the events and their outbox rows commit or roll back
// together. A conflict found by the check leaves the transaction usable;
// other errors may leave it aborted, to be rolled back.
//
// # Reading the global log without gaps
//
// Positions come from a sequence, and a transaction that drew a smaller
// position can commit after one that drew a larger; a reader asking for
// "position > last" would skip the late one for good. Each event therefore
// records its transaction id (xid8), and ReadAll returns only events of
// transactions older than every transaction still running
// (tx_id < pg_snapshot_xmin(pg_current_snapshot())), ordered by
// (tx_id, position). Any event that commits later has a tx_id at or above
// that horizon, so it sorts after everything already returned, and a
// reader holding an event.Cursor never skips it. The price is latency: a
// long transaction in the database (or a prepared one anywhere on the
// server) holds the horizon, and so new events, back until it ends.
//
// # A transaction left open stalls every reader
//
// A session that took a transaction id (wrote anything, or called
// pg_current_xact_id) and then idles in its transaction (a forgotten BEGIN
// in psql, a pool that leaks a transaction, a debugger paused mid-request)
// holds the horizon: ReadAll returns nothing committed after it, and
// projections and catch-up readers stop, without an error, until it ends.
// A prepared transaction (PREPARE TRANSACTION, max_prepared_transactions >
// 0) does the same until COMMIT PREPARED or ROLLBACK PREPARED, and
// survives restarts.
//
// Set idle_in_transaction_session_timeout so that PostgreSQL ends such
// sessions, for the application's role or the database, for example
//
//	ALTER ROLE app SET idle_in_transaction_session_timeout = '60s';
//	ALTER DATABASE shop SET idle_in_transaction_session_timeout = '60s';
//
// (a service's own transactions must stay below it), and keep
// max_prepared_transactions at 0 unless a transaction manager needs it.
// Store.ReadHorizon names the transactions that hold the horizon (pid,
// application, client, state, start, last query; or the prepared
// transaction's gid) and how many committed events wait behind them; the
// cqrskit.postgres.read_horizon.age gauge reports the age; a ReadAll that
// caught up logs a warning naming the blocker when it is older than
// Config.HorizonWarnAfter (30 s); and `cqrskit doctor` checks all of it.
//
// # Restoring into another cluster
//
// Transaction ids belong to a cluster. pg_dump and pg_restore (or a
// logical copy) carry the stored ids into a cluster whose counter is
// usually far lower: the restored events are above the horizon, and new
// events get lower ids and sort before them, so readers would skip them.
// Migrate (and Store.CheckTxIDs, and `cqrskit doctor`) detects stored ids
// at or above the counter and refuses with ErrTxIDsAhead. With writers
// and readers stopped, Store.RebaseTxIDs (`cqrskit migrate rebase-txids`)
// renumbers them below the counter, keeping their order, stream rows and
// checkpoints; with more distinct ids than the counter has below it,
// RebaseOptions.Advance (`--advance`) first consumes ids, or pg_resetwal
// -x can move the counter of a stopped server. pg_upgrade and physical
// replicas keep the counter and need none of this.
//
// Load reads a stream in batches of 1,000 events by (stream_id, version),
// holding no connection while the caller handles them.
//
// # Outbox and notifications
//
// Pending returns outbox rows in ID order joined with their events; Delete
// removes published ones. Per stream, outbox IDs follow stream order,
// because appends to a stream are serialised by its row lock.
//
// Committing outbox rows notifies NotifyChannel, for a relay that LISTENs.
// PostgreSQL serialises the commits of notifying transactions, which would
// cap appends at one per WAL flush, so notifications are coalesced: the
// trigger runs at commit and notifies only if no other transaction is
// committing a notification at that moment. A relay must therefore treat a
// notification as "look now", re-check once shortly after draining the
// outbox, and keep a slow poll as a fallback.
//
// # Relay leadership and wake-ups
//
// Store.Leader returns an outbox.Leader: a session-level advisory lock
// keyed by the outbox table, held on a connection taken out of the
// store's pool for as long as the relay leads. PostgreSQL releases the
// lock when that session ends, however it ends, and a standby's next try
// wins; the old leader learns of the loss at its next Lease.Keep.
//
// Store.Listener returns an outbox.Notifier (and projection.Notifier)
// that LISTENs on NotifyChannel over a pgx connection of its own, opened
// from a connection string because database/sql cannot LISTEN. It
// reconnects with backoff and wakes its subscribers after reconnecting.
//
// Neither works through a pooler in transaction mode; both need a session.
//
// # What it does not do
//
// Events are never updated or deleted by the store. Snapshots keep only the
// highest version per stream. The store does not retry a caller's
// transaction; a conflict is the caller's (or es.Repository's) to resolve.
package postgres
