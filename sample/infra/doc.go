// Package infra assembles the sample Product service from the framework's
// adapters: it opens the store and the broker named by a Config, starts
// the parts the process's role runs, and stops them gracefully.
//
// # Configurations
//
// With no settings the service is self-contained: SQLite in
// <data-dir>/cqrskit.db and a NATS server with JetStream inside the
// process, storing in <data-dir>/nats and listening on no port. In
// production it runs on PostgreSQL (--postgres-url) and an external NATS
// JetStream (--nats-url) or Kafka (--kafka-brokers) cluster. The
// application code is the same in every configuration.
//
// Every flag has an environment variable (Env); a flag on the command
// line wins. NewFlagSet builds the binary's flag set, so tests check
// docker-compose.yml against the very flags the binary accepts.
//
// # Roles
//
// --role=all (the default) runs everything in one process. The parts can
// also run as separate processes and scale separately:
//
//   - api: the HTTP API. Commands append events and outbox rows in one
//     transaction; queries read the read models. It needs no broker.
//   - relay: the outbox relay, publishing to the broker. One relay is
//     active per outbox (a PostgreSQL advisory lock, or a lease row in
//     SQLite); more wait as hot standbys.
//   - worker: the two idempotent consumers of the broker (products read
//     model, low-stock alerts) and the stats projection fed from the
//     event store.
//
// Every role serves /healthz and /readyz on --addr. The relay and worker
// roles need an external broker: the in-process NATS server lives in one
// process only.
//
// # Data flow
//
//	POST /products ... -> events + outbox rows (one transaction)
//	                   -> relay -> broker topic "product"
//	                   -> group products-read-model -> products table
//	                   -> group low-stock-alerts    -> stock_alerts table
//	event store (global log) -> projection sample.stats -> stats_products
//
// # Telemetry
//
// Every role wires the OpenTelemetry SDK into the framework's components
// (store, relay, consumers, projection) and the HTTP server:
//
//   - GET /metrics serves Prometheus text: the cqrskit_* metrics of each
//     package (see their documentation, Observability), the HTTP server
//     metrics (http_server_request_duration_seconds, by route) and the Go
//     runtime's.
//   - Traces: each request gets a server span named by its route, a child
//     of the caller's traceparent header, and one trace follows a command
//     through the append, the relay and the broker into both consumers.
//   - OTLP over HTTP exports traces and metrics when the standard
//     OTEL_EXPORTER_OTLP_ENDPOINT (or the _TRACES_ / _METRICS_ variant) is
//     set; the exporters read the other OTEL_EXPORTER_OTLP_* variables
//     themselves, and OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
//     override the resource (service.name "cqrskit-sample", cqrskit.role).
//
// Close shuts the providers down last, flushing what is buffered; a flush
// that fails (the collector away) is logged and does not fail Close.
//
// # Shutdown
//
// Run stops on its context (SIGINT or SIGTERM in main): /readyz turns 503,
// the HTTP server finishes the requests in flight, the consumers finish
// and acknowledge the message in hand, the relay stops between batches,
// then the broker, the in-process NATS server and the database close.
// What was not yet published stays in the outbox, and what was not yet
// handled stays in the broker, for the next start: nothing is lost.
//
// # What it does not do
//
// A data directory serves one process with the in-process NATS server:
// two --role=all processes must not share one (their JetStream files would
// clash); share a database and an external broker instead. The in-process
// stream keeps every message (no MaxAge); a long-lived embedded setup grows
// <data-dir>/nats accordingly.
package infra
