// Package eventtest is the contract suite every event.Store implementation
// must pass. Call Run from a test in the implementation's package:
//
//	func TestContract(t *testing.T) {
//		eventtest.Run(t, func(t *testing.T) eventtest.Harness {
//			return eventtest.Harness{Store: newStore(t)}
//		})
//	}
//
// The suite attacks the guarantees: every expected-version mode, conflicts,
// duplicate event IDs, loading from a version, the global read, 32
// goroutines appending to one stream, the outbox row committed with (and
// rolled back with) the append, and a catch-up reader that must not skip an
// event while writers commit in random order.
package eventtest
