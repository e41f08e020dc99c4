// Package bustest is the contract every messagebus.Broker passes, run
// against each implementation from its own tests (as watermill's
// tests.TestPubSub or River's riverdrivertest):
//
//	func TestContract(t *testing.T) {
//		bustest.Run(t, bustest.Features{Dedup: true, OrderedRetry: true, MaxMessageBytes: 1 << 20},
//			func(t *testing.T) messagebus.Broker { return newBroker(t) })
//	}
//
// It covers publish and consume (fields and headers intact, event metadata
// round trip), acknowledgement (no redelivery after an ack, also across a
// restart), redelivery after an error and after a panic, RetryAfter's
// delay as a lower bound, max deliveries with the give-up hook, per-key
// order across 20 keys x 100 messages, a republished ID (dropped by
// brokers with Features.Dedup, delivered again with the same ID by the
// others), durable groups (stop, publish, restart: exactly the rest),
// independent and shared groups, graceful and hard Stop, context
// cancellation, and bad input: an oversized message, an invalid topic,
// invalid fields, a closed broker.
//
// Features states what a broker guarantees beyond the common contract;
// the tests of a guarantee it lacks check the weaker promise or skip.
package bustest
