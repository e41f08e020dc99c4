package eventtest

import (
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/outbox"
)

// Harness is what the suite needs from one fresh, empty store.
type Harness struct {
	// Store is the store under test. If it implements event.TxStore the
	// transactional tests run too.
	Store event.Store
	// Outbox, when set, is the outbox written by Store's appends; the
	// suite checks one record per appended event, committed and rolled back
	// with the append.
	Outbox outbox.Store
	// OutOfOrderCommits marks stores (PostgreSQL) where transactions can
	// commit out of position order; the suite then runs the long catch-up
	// reader test with 16 writers committing in random order.
	OutOfOrderCommits bool
}
