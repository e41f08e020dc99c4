// Package projection builds read models straight from the event store: no
// broker in between, gap-safe, with the checkpoint in the same transaction
// as the read-model writes, and rebuildable from position zero.
//
//	p, err := projection.New(projection.Config{
//		Name:        "product-list",
//		Events:      store, // event.Store: ReadAll
//		Checkpoints: store, // CheckpointStore: where the read model lives
//		Apply: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
//			_, err := tx.ExecContext(ctx, `INSERT INTO product_list ...`)
//			return err
//		},
//	})
//	go p.Run(ctx)
//
// # How it works
//
// A Projection reads the global log with event.Store.ReadAll from its
// checkpoint, BatchSize events at a time, outside any transaction. It then
// begins a transaction on Checkpoints.DB(), locks its checkpoint
// (CheckpointStore.Checkpoint), checks that nobody moved it since it was
// read, applies every event of the batch, saves the cursor after the last
// one and commits. Run repeats this until it has caught up, then waits for
// the Notifier (the store's commit signal) or polls, and backs off after
// failures. CatchUp does the same once and returns; Status reports the
// checkpoint and the lag (events behind, when the store can count).
//
// # Guarantees
//
// Every event is applied exactly once, in the log's order (so each stream
// in version order): the checkpoint commits with the read-model writes, so
// a crash loses or repeats nothing, and ReadAll never skips an event that
// commits late (PostgreSQL orders by transaction, SQLite commits in
// position order). Two runners of the same projection — in one process or
// several — do not double-apply: each batch locks the checkpoint row (SQL
// row lock in PostgreSQL, the single write lock in SQLite) and is dropped
// if the checkpoint moved, so they take turns.
//
// An Apply error or panic rolls its batch back; the events before the
// failing one are committed, and the projection stops at that event,
// retrying with backoff, until Apply succeeds. Order matters here, so
// there is no skipping and no dead letter: fix Apply (or the data) and the
// projection continues by itself.
//
// # Rebuilding
//
// Rebuild deletes the checkpoint and calls a reset function (truncate the
// read model) in one transaction, then replays the whole log, reporting
// Progress (done, total, rate, elapsed) after each batch. This is also how
// a new projection is built retroactively over all history. Events
// committed during the rebuild are included up to the moment it catches
// up; Run takes over from there.
//
// # Observability
//
// A projection records OpenTelemetry spans and metrics through
// Config.TracerProvider and MeterProvider (the global providers by
// default; API only, no SDK).
//
// Spans: each batch read from the log is a projection.batch span
// (attributes cqrskit.projection, cqrskit.event.count,
// cqrskit.events.applied), linked to the trace context each of its events
// was appended in.
//
// Metrics, each with cqrskit.projection (the projection's name):
//
//	cqrskit.projection.events.applied  counter {event}  events applied and committed with the checkpoint
//	cqrskit.projection.lag             gauge   {event}  committed events not applied yet
//
// The lag is observed while Run runs and the store can count
// (Config.Counter), with one CountEvents call per metrics collection from
// the last checkpoint the projection saw.
//
// # What it does not do
//
// The read model must be in the checkpoint store's database: effects
// elsewhere (a search index, a cache) are at least once. During a rebuild
// the read model is incomplete; for a rebuild without downtime, build a new
// projection (a new Name and new tables) beside the old one and switch
// readers when its Status shows no lag. Notifications from SQLite reach
// only the process that committed; other processes find new events at
// their next poll.
package projection
