package faultmodel

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/outbox"
)

// LeaseLog records, for the relays of one run, each term of leadership and
// every publish and delete, and the ones that broke the lease rule: no
// publish starts and no delete happens from a relay after its lease's
// ValidUntil (or while it holds no lease).
type LeaseLog struct {
	mu         sync.Mutex
	terms      int
	actions    int
	violations []string
}

// Violations returns the broken rules, in the order they happened.
func (l *LeaseLog) Violations() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.violations...)
}

// Counts returns the terms of leadership and the actions recorded.
func (l *LeaseLog) Counts() (terms, actions int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.terms, l.actions
}

// Leader wraps one relay's outbox.Leader and remembers its current lease,
// which Store and Publisher hooks check against.
type Leader struct {
	Inner outbox.Leader
	Name  string
	Log   *LeaseLog
	cur   atomic.Pointer[recLease]
}

// TryAcquire implements outbox.Leader.
func (l *Leader) TryAcquire(ctx context.Context) (outbox.Lease, error) {
	ls, err := l.Inner.TryAcquire(ctx)
	if err != nil || ls == nil {
		return ls, err
	}
	r := &recLease{inner: ls, l: l}
	l.Log.mu.Lock()
	l.Log.terms++
	l.Log.mu.Unlock()
	l.cur.Store(r)
	if el, ok := ls.(outbox.ExpiringLease); ok {
		return &recExpiringLease{r, el}, nil
	}
	return r, nil
}

// Check records an action of this leader's relay, a violation if it
// happens after its lease's ValidUntil or while it holds none.
func (l *Leader) Check(what string) {
	now := time.Now()
	l.Log.mu.Lock()
	defer l.Log.mu.Unlock()
	l.Log.actions++
	r := l.cur.Load()
	if r == nil {
		l.Log.violations = append(l.Log.violations, fmt.Sprintf("%s: %s while holding no lease", l.Name, what))
		return
	}
	if el, ok := r.inner.(outbox.ExpiringLease); ok {
		if vu := el.ValidUntil(); now.After(vu) {
			l.Log.violations = append(l.Log.violations, fmt.Sprintf("%s: %s at %s, %s after its lease ran out (ValidUntil %s)",
				l.Name, what, now.Format("15:04:05.000"), now.Sub(vu).Round(time.Millisecond), vu.Format("15:04:05.000")))
		}
	}
}

type recLease struct {
	inner outbox.Lease
	l     *Leader
}

func (r *recLease) Keep(ctx context.Context) error { return r.inner.Keep(ctx) }

func (r *recLease) Release(ctx context.Context) error {
	r.l.cur.CompareAndSwap(r, nil)
	return r.inner.Release(ctx)
}

type recExpiringLease struct {
	*recLease
	el outbox.ExpiringLease
}

func (r *recExpiringLease) ValidUntil() time.Time { return r.el.ValidUntil() }

// Store wraps one relay's outbox.Store and checks each Delete and Park
// against the relay's lease.
type Store struct {
	outbox.Store
	Leader *Leader
}

// Delete implements outbox.Store.
func (s *Store) Delete(ctx context.Context, ids []int64) error {
	s.Leader.Check(fmt.Sprintf("delete of %d rows", len(ids)))
	return s.Store.Delete(ctx, ids)
}

// Park implements outbox.Store.
func (s *Store) Park(ctx context.Context, id int64, reason string) error {
	s.Leader.Check(fmt.Sprintf("park of row %d", id))
	return s.Store.Park(ctx, id, reason)
}

// CheckSend returns a Publisher.OnSend hook that checks each send against
// the leader's lease.
func (l *Leader) CheckSend() func([]messagebus.Message) {
	return func(msgs []messagebus.Message) {
		l.Check(fmt.Sprintf("publish of %d messages (first %s)", len(msgs), msgs[0].ID))
	}
}
