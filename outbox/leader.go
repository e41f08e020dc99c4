package outbox

import (
	"context"
	"sync"
	"time"
)

// Leader elects the one active relay per outbox. store/postgres implements
// it with a session advisory lock, store/sqlite with a lease row; other
// relay processes stay hot standbys and keep trying.
type Leader interface {
	// TryAcquire tries once to become the active relay. It returns a nil
	// Lease and no error when another relay holds leadership.
	TryAcquire(ctx context.Context) (Lease, error)
}

// Lease is held by the active relay.
//
// The relay confirms its lease with Keep before it deletes what it
// published, and before each publish unless the lease is an
// ExpiringLease that is still valid long enough; a relay whose Keep fails
// stops before its next publish or delete and stands by.
type Lease interface {
	// Keep confirms (and for time-based leases, extends) leadership. An
	// error means leadership may be lost: the relay stops publishing.
	Keep(ctx context.Context) error
	// Release gives leadership up.
	Release(ctx context.Context) error
}

// ExpiringLease is implemented by time-based leases (SQLite's lease row).
// The relay bounds each publish by ValidUntil, so it never publishes or
// deletes after its lease may have run out without first renewing it with
// Keep; no standby can take over a lease before ValidUntil.
type ExpiringLease interface {
	Lease
	// ValidUntil is the time until which no other relay can take the
	// lease over, as of the last successful acquire or Keep.
	ValidUntil() time.Time
}

// Notifier wakes the relay when new outbox rows commit, so it need not poll.
// PostgreSQL uses LISTEN/NOTIFY; SQLite an in-process signal.
type Notifier interface {
	// Listen returns a channel that receives a value (coalesced) after new
	// rows commit, until ctx ends.
	Listen(ctx context.Context) (<-chan struct{}, error)
}

// LocalLeader is an in-process Leader: one relay per LocalLeader value. Use
// it with single-process stores (memory) and in tests.
type LocalLeader struct {
	mu   sync.Mutex
	held bool
}

// TryAcquire implements Leader.
func (l *LocalLeader) TryAcquire(context.Context) (Lease, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held {
		return nil, nil
	}
	l.held = true
	return localLease{l}, nil
}

type localLease struct{ l *LocalLeader }

func (localLease) Keep(context.Context) error { return nil }

func (ll localLease) Release(context.Context) error {
	ll.l.mu.Lock()
	ll.l.held = false
	ll.l.mu.Unlock()
	return nil
}
