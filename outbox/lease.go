package outbox

import (
	"context"
	"fmt"
	"time"
)

// leaseLostError ends a term of leadership: the relay stops publishing and
// stands by.
type leaseLostError struct{ err error }

func (e *leaseLostError) Error() string { return "keep leadership: " + e.err.Error() }
func (e *leaseLostError) Unwrap() error { return e.err }

// leaseClock keeps a relay's lease confirmed around each publish and
// delete. For an ExpiringLease it renews when half of the lease's length
// has passed and bounds each publish to end a margin before the lease may
// run out, so a publish never outlives leadership. Other leases (the
// PostgreSQL advisory lock, lost only with its session) are confirmed with
// Keep before every delete, and before a publish once keepEvery has passed
// since the last Keep: a publish by a leader that lost its lock since is
// harmless (messages go out one per stream at a time, with the IDs the
// broker de-duplicates), a delete is not done.
type leaseClock struct {
	lease     Lease
	keepEvery time.Duration
	expiring  ExpiringLease // nil for leases without an expiry
	length    time.Duration // the lease's length, measured at the last Keep
	lastKeep  time.Time
}

func newLeaseClock(l Lease, keepEvery time.Duration) *leaseClock {
	lc := &leaseClock{lease: l, keepEvery: keepEvery, lastKeep: time.Now()}
	if el, ok := l.(ExpiringLease); ok {
		lc.expiring = el
		lc.length = time.Until(el.ValidUntil())
	}
	return lc
}

// keep renews the lease now.
func (lc *leaseClock) keep(ctx context.Context) error {
	if err := lc.lease.Keep(ctx); err != nil {
		return &leaseLostError{err}
	}
	lc.lastKeep = time.Now()
	if lc.expiring != nil {
		lc.length = time.Until(lc.expiring.ValidUntil())
	}
	return nil
}

// keepIfDue renews the lease when keepEvery has passed since the last
// Keep.
func (lc *leaseClock) keepIfDue(ctx context.Context) error {
	if time.Since(lc.lastKeep) < lc.keepEvery {
		return nil
	}
	return lc.keep(ctx)
}

// confirmPublish makes sure the lease holds for a publish and returns when
// the publish must end.
func (lc *leaseClock) confirmPublish(ctx context.Context) (time.Time, error) {
	if lc.expiring == nil {
		if err := lc.keepIfDue(ctx); err != nil {
			return time.Time{}, err
		}
		return time.Now().Add(24 * time.Hour), nil
	}
	return lc.confirm(ctx)
}

// confirm makes sure the lease holds for the next step and returns when
// that step must end: a margin (a tenth of the lease) before an expiring
// lease may run out, else far in the future.
func (lc *leaseClock) confirm(ctx context.Context) (time.Time, error) {
	if lc.expiring == nil {
		if err := lc.keep(ctx); err != nil {
			return time.Time{}, err
		}
		return time.Now().Add(24 * time.Hour), nil
	}
	if time.Until(lc.expiring.ValidUntil()) < lc.length/2 {
		if err := lc.keep(ctx); err != nil {
			return time.Time{}, err
		}
	}
	end := lc.expiring.ValidUntil().Add(-lc.length / 10)
	if !time.Now().Before(end) {
		return time.Time{}, &leaseLostError{fmt.Errorf("the lease runs out at %s, too soon to publish or delete", lc.expiring.ValidUntil().Format(time.RFC3339Nano))}
	}
	return end, nil
}
