// Command cqrsbench runs the performance scenarios of DESIGN.md and prints,
// for each case, the framework's rate beside the raw limit measured in the
// same run on the same data, their ratio and the design target:
//
//	go run ./cmd/cqrsbench -quick                      # every scenario, small: under two minutes
//	go run ./cmd/cqrsbench                             # DESIGN.md's sizes, PostgreSQL + NATS
//	go run ./cmd/cqrsbench -store=sqlite -broker=kafka -only=drain,latency
//	go run ./cmd/cqrsbench -json docs/bench/results.json -svg docs/bench/ratios.svg
//
// # Scenarios
//
//	append    Repository.Save of 1 event (+ outbox row) per command, 1 and 16
//	          writers, and of 100 events per command; raw: database/sql doing
//	          the same INSERTs in a transaction per command
//	drain     outbox.Relay draining 100,000 rows to JetStream (file storage)
//	          or Kafka; raw: the SQL half alone, the publish half alone (the
//	          relay's own messages, plain nats.go or franz-go) and both by hand
//	consumer  handler.Idempotent into a read model, Handle (1 per transaction)
//	          and HandleBatch (100); raw: dedupe INSERT + upsert per event
//	load      Repository.Load of a 10,000-event aggregate by replay (raw: one
//	          SELECT, json.Unmarshal, Apply) and from a snapshot (against the
//	          replay: the target is a speed-up)
//	latency   the sample's HTTP API at 500 commands/s, open loop: each command
//	          then a read until the read model shows it (?min_version, or
//	          -latency-read=poll); raw: the commands' own acknowledgement
//	rebuild   projection.Rebuild over 1,000,000 events with its progress bar;
//	          raw: pages read by position, an upsert per event, a checkpoint
//
// The framework and the raw loop take turns in blocks on the same store, so
// a machine shared with other work slows both alike; compare figures only
// within one run. The ratio is framework/raw for rates and raw/framework
// for latencies: 1 is raw speed, higher is better. No figure is asserted;
// a missed target is reported, and the exit code is 0 unless a scenario
// failed to run.
//
// # Storage and brokers
//
// With -store=postgres (the default) every scenario gets a scratch
// database, created on the server of -postgres-url (default
// $CQRSKIT_TEST_POSTGRES_URL, else postgres://postgres@127.0.0.1:5432/postgres)
// and dropped afterwards; with -store=sqlite a file in a temporary
// directory. The broker is an in-process NATS server with JetStream file
// storage unless -nats-url names one (the run's streams are deleted
// afterwards), or an in-process Kafka cluster (kfake) with -broker=kafka.
//
// -cpuprofile writes a pprof CPU profile of the whole run, framework and
// raw loops alike: use -only to profile one scenario.
package main
