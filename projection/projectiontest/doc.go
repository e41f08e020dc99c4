// Package projectiontest is the contract suite for projection.CheckpointStore
// implementations and the guarantees of projection.Projection on them. Call
// Run from a test in the implementation's package:
//
//	func TestProjectionContract(t *testing.T) {
//		projectiontest.Run(t, func(t testing.TB) projectiontest.Harness {
//			s := newStore(t)
//			return projectiontest.Harness{Events: s, Checkpoints: s}
//		})
//	}
//
// The suite checks checkpoints (stored, deleted, rolled back with their
// transaction, locked against a second runner), counting, catch-up in
// batches, a failing and a panicking Apply, the wake-up by the store's
// notifier, and the main guarantee: while 16 writers commit events in
// random order with random delays and two runners of the same projection
// compete, the read model ends equal to a replay of the whole log, applied
// once per event in stream order; a rebuild from zero gives the same read
// model and reports its progress.
//
// BenchRebuild measures a rebuild over a large log beside a bare ReadAll
// loop over the same events.
//
// The SQL the suite runs itself uses $n placeholders and ON CONFLICT, which
// PostgreSQL and SQLite both accept.
package projectiontest
