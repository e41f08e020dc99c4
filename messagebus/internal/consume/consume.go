// Package consume holds the consuming machinery the brokers share: the
// subscription lifecycle and in-place retries with their give-up hook, so
// every broker has the same semantics.
package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/cqrskit/cqrskit/internal/runloop"
	"github.com/cqrskit/cqrskit/messagebus"
)

// Sub implements messagebus.Subscription around a run loop.
type Sub struct {
	stop     chan struct{}
	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
	closed   atomic.Bool
	err      error
}

// Start runs run in a goroutine. run's ctx is derived from ctx and is
// cancelled by a hard stop; stop is closed by a graceful one. run returns
// when it has released everything.
func Start(ctx context.Context, run func(ctx context.Context, stop <-chan struct{}) error) *Sub {
	ctx, cancel := context.WithCancel(ctx)
	s := &Sub{stop: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer cancel()
		err := run(ctx, s.stop)
		switch {
		case s.closed.Load():
			err = messagebus.ErrClosed
		case err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled):
			err = nil
		}
		s.err = err
	}()
	return s
}

// Stop implements messagebus.Subscription.
func (s *Sub) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stop) })
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.cancel()
		return fmt.Errorf("stop subscription: %w", ctx.Err())
	}
}

// Close stops the subscription hard because its broker closes, and waits
// for it to end.
func (s *Sub) Close() {
	s.closed.Store(true)
	s.stopOnce.Do(func() { close(s.stop) })
	s.cancel()
	<-s.done
}

// Done implements messagebus.Subscription.
func (s *Sub) Done() <-chan struct{} { return s.done }

// Err implements messagebus.Subscription.
func (s *Sub) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Registry tracks a broker's live subscriptions so Close can end them.
type Registry struct {
	mu     sync.Mutex
	subs   map[*Sub]struct{}
	closed bool
}

// Add registers s and forgets it when it ends. It returns false if the
// registry was closed; the caller must then close s.
func (r *Registry) Add(s *Sub) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	if r.subs == nil {
		r.subs = map[*Sub]struct{}{}
	}
	r.subs[s] = struct{}{}
	go func() {
		<-s.done
		r.mu.Lock()
		delete(r.subs, s)
		r.mu.Unlock()
	}()
	return true
}

// Close closes every registered subscription and refuses new ones.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	subs := make([]*Sub, 0, len(r.subs))
	for s := range r.subs {
		subs = append(subs, s)
	}
	r.mu.Unlock()
	for _, s := range subs {
		s.Close()
	}
}

// Policy is a subscription's retry policy.
type Policy struct {
	messagebus.SubscribeConfig
	Topic, Group string
	Logger       *slog.Logger
}

// Outcome is what became of a delivery.
type Outcome int

const (
	// Handled: the handler returned nil; acknowledge.
	Handled Outcome = iota
	// GaveUp: deliveries were used up and OnGiveUp ran; acknowledge
	// (terminate) and move on.
	GaveUp
	// Interrupted: the subscription stopped before the message was
	// handled; leave it for redelivery.
	Interrupted
)

// Call runs h once and turns a panic into an error.
func Call(ctx context.Context, h messagebus.Handler, d messagebus.Delivery) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return h(ctx, d)
}

// Deliver hands d to h and retries in place after failures, waiting the
// retry delay between attempts, until h succeeds, the deliveries are used
// up or the subscription stops. It returns the outcome and the attempt
// number of the last delivery.
func (p *Policy) Deliver(ctx context.Context, stop <-chan struct{}, h messagebus.Handler, d messagebus.Delivery) (Outcome, int) {
	for {
		err := Call(ctx, h, d)
		if err == nil {
			return Handled, d.Attempt
		}
		if ctx.Err() != nil {
			return Interrupted, d.Attempt
		}
		if p.Exhausted(d.Attempt) {
			p.GiveUp(ctx, d, err)
			return GaveUp, d.Attempt
		}
		delay := p.Delay(err)
		p.LogFailure(ctx, d, err, delay)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-stop:
			t.Stop()
			return Interrupted, d.Attempt
		case <-ctx.Done():
			t.Stop()
			return Interrupted, d.Attempt
		}
		d.Attempt++
	}
}

// Exhausted reports whether a failed delivery numbered attempt was the last
// one allowed.
func (p *Policy) Exhausted(attempt int) bool {
	return p.MaxDeliveries > 0 && attempt >= p.MaxDeliveries
}

// Delay is the wait before the next delivery after err.
func (p *Policy) Delay(err error) time.Duration {
	if d, ok := messagebus.RetryDelay(err); ok {
		return d
	}
	return p.RetryDelay
}

// GiveUp runs the give-up hook, or logs when there is none.
func (p *Policy) GiveUp(ctx context.Context, d messagebus.Delivery, err error) {
	if p.OnGiveUp != nil {
		func() {
			defer func() {
				if r := recover(); r != nil {
					p.Logger.ErrorContext(ctx, "messagebus: give-up hook panicked", "panic", r)
				}
			}()
			p.OnGiveUp(ctx, d, err)
		}()
		return
	}
	p.Logger.ErrorContext(ctx, "messagebus: giving up on message after its last delivery",
		"topic", p.Topic, "group", p.Group, "id", d.ID, "key", d.Key, "attempt", d.Attempt, "error", err)
}

// LogFailure logs a failed delivery that will be retried after delay.
func (p *Policy) LogFailure(ctx context.Context, d messagebus.Delivery, err error, delay time.Duration) {
	p.Logger.WarnContext(ctx, "messagebus: handler failed; retrying",
		"topic", p.Topic, "group", p.Group, "id", d.ID, "key", d.Key, "attempt", d.Attempt, "retry_in", delay, "error", err)
}

// Backoff returns the wait before the n-th consecutive retry (from 0) of a
// broker operation: 100ms doubling up to 5s, spread by runloop.Jitter so
// subscriptions that failed together do not retry in lockstep.
func Backoff(n int) time.Duration { return runloop.Nth(brokerBackoff, n+1) }

var brokerBackoff = backoff.ExponentialBackOff{
	InitialInterval: 100 * time.Millisecond, MaxInterval: 5 * time.Second,
	Multiplier: 2, RandomizationFactor: runloop.Jitter,
}

// Sleep waits d, or until stop or ctx; it reports whether the full wait
// elapsed.
func Sleep(ctx context.Context, stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	case <-ctx.Done():
		return false
	}
}
