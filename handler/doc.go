// Package handler makes event consumers take effect exactly once, with
// retries, backoff and dead letters.
//
// A broker delivers at least once: after a crash, a lost ack or a
// rebalance, the same event arrives again. Idempotent wraps a Func that
// writes through a *sql.Tx so that each event changes the read model once:
//
//	h, err := handler.Idempotent(handler.Config{
//		Name:  "product-search",
//		Store: store,
//		Func: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
//			_, err := tx.ExecContext(ctx, `UPDATE products SET name = $1 WHERE id = $2`, ...)
//			return err
//		},
//	})
//	sub, err := bus.Subscribe(ctx, "product", "product-search", h.Handle)
//
// # Exactly-once effect
//
// For each delivery the handler begins a transaction on Store.DB(), inserts
// the mark (handler name, event ID) with ON CONFLICT DO NOTHING, runs the
// Func in the same transaction and commits; only then does Handle return
// nil, which acknowledges the message. An event whose mark exists already
// is skipped and acknowledged. A concurrent delivery of the same event
// waits on the mark's row until the first one commits, then skips. A crash
// before the commit leaves nothing, and the broker delivers again; a crash
// after it leaves the mark, and the redelivery is skipped. So whatever the
// Func writes through tx happens exactly once per handler name.
//
// Config.Name keys the marks: keep it stable, and give each handler its own.
//
// # Retries
//
// A Func error rolls the transaction back and the event is tried again
// after an exponential backoff with jitter (RetryPolicy: InitialDelay,
// Multiplier, MaxDelay, Jitter). One delivery makes up to InProcess tries,
// sleeping in between; then Handle returns messagebus.RetryAfter with the
// next delay, so the broker delivers the message again later (other
// messages of the subscription wait meanwhile on brokers that retry in
// place). Tries are counted over deliveries from Delivery.Attempt, as
// (Attempt-1)*InProcess plus the tries of this delivery; after MaxAttempts
// tries the message is dead-lettered and acknowledged.
//
// Some failures are not worth a retry and go to the dead letters at once:
// an error wrapped with Permanent, one satisfying errors.Is(err,
// event.ErrDecode) (a payload that does not decode: see For), and a
// message that is not an event at all (envelope.Event fails; it is
// dead-lettered with an *event.DecodeError, and the Func never sees it). A
// panic in the Func is recovered into an error, its stack logged, and
// counts as one failed try.
//
// # Database failures
//
// When beginning the transaction, marking or committing fails, the
// database is the problem, not the event: Handle returns the error (with a
// retry delay that grows with Delivery.Attempt) and nothing is
// acknowledged, dead-lettered or lost; the message comes back until the
// database does. A Func error that is the database's passing fault counts
// the same way: a dead connection (driver.ErrBadConn, sql.ErrConnDone), a
// network error (net.Error), an expired deadline (context.DeadlineExceeded),
// and whatever the Store's TransientClassifier recognises — for
// PostgreSQL a serialization failure (40001), a deadlock (40P01), a lost
// connection (class 08, a backend terminated: 57P01), a lock or statement
// timeout; for SQLite SQLITE_BUSY and SQLITE_LOCKED. Such a try is retried
// with the policy's backoff, InProcess times per delivery and then by
// redelivery, and does not count towards MaxAttempts: it never sends the
// event to the dead letters, and the deliveries it cost are left out of
// the attempt count (as far as this process saw them). Each is logged as a
// warning saying what to check. An error wrapped with Permanent is always
// the Func's. A dead letter is only acknowledged once it is stored; if
// storing it fails the message stays with the broker. A commit that fails
// may have committed all the same: the mark makes the next try find out.
//
// # Unknown event types
//
// In a rolling deploy a newer producer emits event types (or schema
// versions of a type, see For) that an older consumer's registry lacks.
// A Func error satisfying errors.Is(err, event.ErrUnknownEventType), as
// event.Registry.Decode returns, is by default retried like a database
// failure — not counted, never dead-lettered, never skipped — until a
// binary that knows the type handles it; the subscription waits behind it
// meanwhile. Config.UnknownEvents = DeadLetterUnknownEvents dead-letters such
// events at once instead; replay them after the deploy.
//
// # Dead letters
//
// A dead letter keeps the message (topic, payload, headers), the last
// error, the number of tries and the first and last failure times, in the
// store's dead_letters table. Handler.DeadLetters lists them, Replay runs
// one through the Func again — once, with the processed mark, then deletes
// it — and Discard deletes one unhandled. Dead-lettering means giving up on
// order: the messages after a dead-lettered one are handled before it is
// replayed.
//
// Keep the broker's own delivery limit (messagebus.WithMaxDeliveries)
// unlimited or above MaxAttempts/InProcess, so the handler decides; or pass
// Handler.GiveUp to messagebus.WithGiveUp to dead-letter what the broker
// gives up on.
//
// # Batches
//
// HandleBatch handles many deliveries in one transaction — one multi-row
// mark when the store implements BatchMarker, one Func call each, one
// commit — which is how a consumer reaches tens of thousands of events per
// second. Duplicates within the batch are applied once. If a Func fails the
// batch is rolled back and handled one delivery at a time, so one bad
// message cannot roll back or block its neighbours; a database failure
// fails the whole batch, unacknowledged.
//
// A subscription hands over one message at a time and acknowledges it when
// the handler returns, so a handler cannot collect a batch from one
// subscription without acknowledging early, and acknowledging before the
// commit would lose messages in a crash. Batcher therefore blocks each
// Handle call until its delivery's batch has committed, and batches
// deliveries that arrive concurrently: from several subscriptions (one per
// topic, several members of a NATS JetStream group, one per Kafka
// partition) or goroutines. With one sequential caller every batch holds
// one delivery.
//
// # Retention of processed marks
//
// Marks accumulate, one row per handled event. Handler.Prune deletes those
// older than a retention; an event delivered again after its mark is gone
// takes effect again. So the retention must outlast every way an event
// can come back:
//
//   - redelivery of unacknowledged messages (ack wait, retries, a consumer
//     down for a while): the longest outage you ride out;
//   - the relay republishing after a crash between publish and delete
//     (de-duplicated by NATS JetStream within its duplicate window, not by
//     Kafka);
//   - a consumer group reset or recreated, which replays the topic from
//     its retention (JetStream MaxAge, Kafka retention.ms): if that can
//     happen, keep marks at least as long as the broker keeps messages;
//   - replaying a dead letter: the mark of an event handled after its dead
//     letter was written protects that replay.
//
// A retention of weeks (marks are small) with a daily Prune is a sensible
// default; rebuild read models that must start over with the projection
// package, not by replaying the topic.
//
// # What it does not do
//
// Effects outside the transaction — an email, an HTTP call — are at least
// once: they may repeat when a try fails after them or the commit fails.
// Make them idempotent, or write an outbox row in tx and send from there.
// The read model must live in the store's database (Store.DB()). The first
// failure time of a dead letter is remembered per process, so after a
// restart it is the first failure this process saw.
//
// # Observability
//
// The handler records OpenTelemetry spans and metrics through
// Config.TracerProvider and Config.MeterProvider (the global providers by
// default; API only, no SDK).
//
// Spans: each delivery gets a consumer span "handle <event type>", a child
// of the trace context in its traceparent header — the relay's producer
// span — so the command's trace continues into the handler; the Func's ctx
// carries it. HandleBatch records one "handle batch" span linked to each
// delivery's context; Replay records "replay <event type>".
//
// Metrics, each with cqrskit.handler (the handler's name):
//
//	cqrskit.handler.processed      counter {event}  committed, by cqrskit.outcome: applied, duplicate
//	cqrskit.handler.retries        counter {retry}  failed tries to be tried again, by cqrskit.cause: func, database, unknown_type
//	cqrskit.handler.dead_lettered  counter {event}  messages stored as dead letters
package handler
