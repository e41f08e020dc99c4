// Command cqrschaos is the fault suite of cqrskit: it runs the sample
// Product service (package sample) as real processes against real
// PostgreSQL and NATS JetStream, drives concurrent commands through its
// HTTP API, injects faults and then checks from outside that nothing was
// lost and nothing took effect twice.
//
//	go run ./cmd/cqrschaos                         # 60 s, 20 kills, private PostgreSQL and NATS
//	go run ./cmd/cqrschaos -duration 6m -kills 120 # a long run
//	go run ./cmd/cqrschaos -postgres-url postgres://postgres@127.0.0.1:5432/postgres
//	go run ./cmd/cqrschaos -embedded               # one process: SQLite + in-process NATS
//
// # What runs
//
// The sample (with the poison hook of internal/poisoned) is built once
// (go build) into a temporary directory and
// started as separate processes: -apis API processes, -relays outbox
// relays (one active, the others hot standbys) and -workers consumer
// processes sharing the consumer groups. They share a scratch database and
// a private nats-server (/usr/sbin/nats-server on a free port, with its
// own JetStream directory), so the suite can stop the broker without
// disturbing anything else on the machine.
//
// PostgreSQL is, by default, a private server made with initdb and pg_ctl
// in a temporary directory (run as the postgres user when cqrschaos runs
// as root), which the suite restarts as a fault. With -postgres-url the
// suite creates a scratch database on that server instead and drops it at
// the end; it restarts such a server only with -pg-restart, which runs
// -pg-restart-cmd (by default the Debian command for the machine's
// cluster 15/main): other users of that server see the restart too.
//
// With -embedded it runs the single-process default instead: --role=all
// with SQLite and the in-process NATS server in a data directory. All
// kills then hit that process; there is no separate broker or database to
// restart.
//
// # Faults
//
// During -duration, at random moments: -kills SIGKILLs spread over the
// api, relay and worker roles (each process restarts after a short pause),
// -nats-restarts stops of the NATS server (SIGTERM, -outage down, start
// again), -pg-restarts immediate-mode stops of PostgreSQL (a crash and
// recovery, -outage down) and one poison event: a product whose creation
// the worker rejects permanently (CQRSKIT_CHAOS_POISON, set on the worker
// processes only: the suite runs the sample with this fault hook, built
// from internal/poisoned, and never ships it in the sample).
//
// Clients (-clients, at most -rate commands per second in all) create
// products and adjust stock, rename, reprice and discontinue them. Every
// command carries its own X-Correlation-Id, which the service stores in
// the event's metadata. The client never retries a command: one whose
// answer was lost (connection cut, 5xx) is counted as ambiguous.
//
// # Checks
//
// After the load the suite waits (at most -settle) until the outbox is
// drained and the read models caught up, stops the processes and checks:
//
//   - every acknowledged command is in the event store at the version the
//     client was given, with its correlation ID, type and payload; no
//     command is stored twice;
//   - each stream is gap-free and in version order in the global log, and
//     each stock adjustment continues the stock of the one before;
//   - the products read model equals a replay of the store (version, name,
//     SKU, price, stock, discontinued), the stats projection too, and the
//     low-stock alerts are exactly those the events call for;
//   - both consumers marked every event processed exactly once, and the
//     broker saw each product's events in version order;
//   - the poison event is in the dead letters, and nothing else is.
//
// The last line of the output is exactly
//
//	cqrschaos: N commands, K faults, L lost, D duplicated
//
// N counts acknowledged commands, K injected faults, L lost commands and
// events (acknowledged but not stored, or stored but without their full
// effect: missing from a read model, unmarked by a consumer, dead-lettered,
// absent from the broker) and D duplicated ones (a command stored twice, a
// read model ahead of the store, an alert or mark for no event). The exit
// status is 1 when L or D is not 0, when another check failed (listed
// above the last line), or when fewer faults than asked were injected; also
// when the suite could not set up (no summary line then, the reason on
// stderr); 2 for a bad command line. See docs/RELIABILITY.md.
package main
