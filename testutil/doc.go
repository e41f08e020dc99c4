// Package testutil gives tests real infrastructure and aggregate helpers:
//
//   - Postgres(t): a fresh, isolated PostgreSQL database per test, dropped at
//     cleanup. Providers, in order: a server URL in CQRSKIT_TEST_POSTGRES_URL
//     (a database is created and dropped per test), local initdb/pg_ctl
//     binaries (an ephemeral server in a temporary directory on a free port),
//     Testcontainers' Postgres module when a Docker daemon is reachable. When
//     none is available the test is skipped with one line saying how to point
//     it at a server, unless CQRSKIT_REQUIRE_POSTGRES=1, which makes it a
//     failure (CI sets it).
//   - NATS(t): an in-process NATS server with JetStream, and the machine's
//     server from CQRSKIT_TEST_NATS_URL, else at nats://127.0.0.1:4222 when
//     one answers there (MachineNATS).
//   - Given/When/Then for aggregates: given past events, when a command, then
//     the new events or an error.
package testutil
