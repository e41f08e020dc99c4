package outbox

import (
	"context"
	"sync"
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
type Lease interface {
	// Keep confirms (and for time-based leases, extends) leadership. An
	// error means leadership may be lost: the relay stops publishing.
	Keep(ctx context.Context) error
	// Release gives leadership up.
	Release(ctx context.Context) error
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
