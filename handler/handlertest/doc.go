// Package handlertest is the contract suite for handler.Store
// implementations and the guarantees of handler.Idempotent on them. Call Run
// from a test in the implementation's package:
//
//	func TestHandlerContract(t *testing.T) {
//		handlertest.Run(t, func(t testing.TB) handlertest.Harness {
//			return handlertest.Harness{Store: newStore(t)}
//		})
//	}
//
// The suite attacks the guarantees on a real database: the same event
// delivered five times, one after another and all at once, through the
// handler and through a broker; a handler that fails and then succeeds
// (the backoff delays observed through an injected sleep); a poison message
// retried to its limit, dead-lettered while the messages behind it go on,
// then replayed once; messages that are not events; panics; the database
// going away while messages arrive; batches with duplicates, bad messages
// and database failures; and pruning of processed marks. Every read model
// and every mark lives in the store's own database.
//
// Bench measures consumer throughput into a read model: one event per
// transaction and batched, beside a raw database/sql loop doing the same
// dedupe insert and update, 1 and 100 per transaction.
//
// The SQL the suite runs itself uses $n placeholders and ON CONFLICT, which
// PostgreSQL and SQLite both accept.
package handlertest
