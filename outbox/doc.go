// Package outbox relays events from the transactional outbox to a broker.
//
// SQL event stores write one outbox row per event in the append's
// transaction, so an event is in the outbox if and only if it is in the
// store. A Relay moves those rows to a broker:
//
//  1. read a batch of rows in ID order,
//  2. publish every message (pipelined; the event ID is the broker message
//     ID and the stream ID is the key),
//  3. wait until the broker acknowledged them all,
//  4. delete the acknowledged rows.
//
// # Guarantees
//
// At least once: a row is deleted only after the broker acknowledged its
// message. A crash between publish and delete republishes the same
// messages with the same IDs; NATS JetStream drops them in its duplicate
// window, Kafka consumers see them as redeliveries of the same ID (and the
// handler package makes their effect exactly-once).
//
// In stream order: rows of one stream get increasing IDs in commit order
// (the store locks the stream while appending), and the relay publishes
// them in that order to one key. A Publisher does not send a message after
// a failed one with the same key, whether it failed before it was sent or
// its acknowledgement never came, and the relay deletes, per stream, only
// the rows before the stream's first failure; so a lost ack is retried
// before anything later of its stream reaches the broker.
//
// A rejected row never holds back another stream: when the broker rejects
// a message for good (too large, bad topic) the relay parks its row
// (Store.Park: a table of its own, with the broker's error), logs it at
// error level and counts it (cqrskit.outbox.parked). The stream's later
// rows wait behind the parked one; every other stream goes on at full
// speed. An operator lists, retries or discards parked rows with
// `cqrskit outbox parked list|retry|discard` (ParkedStore).
//
// One active relay per outbox: a Leader (PostgreSQL advisory lock, SQLite
// lease) elects it; other relay processes wait as hot standbys and take
// over when its leadership ends. The relay confirms its lease before each
// delete, renews a time-based lease (ExpiringLease) before a publish once
// half of it has passed and bounds the publish by its validity, so a relay
// that may have lost its lease deletes nothing more and publishes nothing
// after its lease ran out. (A PostgreSQL lock lost with its session is
// noticed at the next delete, or the next Keep between batches; a publish
// in between is harmless: one message per stream in flight, with IDs the
// broker de-duplicates.)
//
// Broker or database unavailable: the relay backs off exponentially
// (MinBackoff to MaxBackoff), loses nothing, and resumes by itself.
//
// Woken by a Notifier (PostgreSQL LISTEN/NOTIFY, an in-process signal for
// SQLite); polling is only the fallback. A Notifier must not lose a
// commit's wake-up: the PostgreSQL Listener follows the transactions
// running at each notification, so a commit whose notification the store
// coalesced away still wakes the relay. Without a Notifier the relay looks
// again at once after a batch that found rows.
//
// # Observability
//
// The relay records OpenTelemetry spans and metrics through
// Config.TracerProvider and MeterProvider (the global providers by
// default; API only, no SDK).
//
// Spans: each batch is an outbox.drain span (a trace of its own when Run drives
// the relay). Each
// message gets a producer span "publish <topic>" whose parent is the trace
// context stored with its event (the es.Append span of the command that
// raised it), linked to the batch span; its context replaces the message's
// traceparent and tracestate headers, so the consumer's span (package
// handler) becomes its child. One trace thus runs command -> es.Append ->
// publish -> handle, across processes and the broker.
//
// Metrics:
//
//	cqrskit.outbox.published     counter {event}  events published, acknowledged and deleted
//	cqrskit.outbox.errors        counter {error}  failures, by cqrskit.operation: read, publish (per event), delete, leadership, park
//	cqrskit.outbox.backlog       gauge   {event}  unpublished rows (Store.Stats)
//	cqrskit.outbox.oldest_age    gauge   s        age of the oldest unpublished row; 0 when empty
//	cqrskit.outbox.relay.active  gauge   {relay}  1 while this relay holds leadership, else 0
//	cqrskit.outbox.parked        counter {event}  rows this relay parked (rejected by the broker for good)
//	cqrskit.outbox.parked_rows   gauge   {event}  parked rows waiting for an operator (Store.Stats)
//
// The gauges are observed while Run runs, standbys included, with one
// Store.Stats call per metrics collection and none in between.
package outbox
