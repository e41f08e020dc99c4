// Package natstest gives tests a NATS server with JetStream.
//
//   - URL(t) and Start(t): an in-process server private to the test, on a
//     random port, with its store under t.TempDir. Start returns the server
//     so that a test can shut it down and restart it to simulate an outage.
//   - Machine(t): the machine's server from CQRSKIT_TEST_NATS_URL, else at
//     nats://127.0.0.1:4222 when one answers there. Without one the test is
//     skipped, or fails when CQRSKIT_REQUIRE_NATS=1 (CI sets it).
package natstest
