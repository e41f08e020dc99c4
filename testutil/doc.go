// Package testutil holds test helpers that need no infrastructure:
// Given/When/Then for aggregates — given past events, when a command, then
// the new events or an error. No store is involved, so importing it pulls in
// nothing beyond the standard library and the es package.
//
// Helpers that start real infrastructure live in subpackages, so that a test
// of pure domain code does not build database drivers or servers:
//
//   - [github.com/cqrskit/cqrskit/testutil/pgtest]: a fresh, isolated
//     PostgreSQL database per test.
//   - [github.com/cqrskit/cqrskit/testutil/natstest]: an in-process NATS
//     server with JetStream, or the machine's NATS server.
package testutil
