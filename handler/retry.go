package handler

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/cqrskit/cqrskit/internal/runloop"
)

// RetryPolicy says how often and how patiently a Handler tries an event
// whose Func fails. The zero value of each field means its default.
//
// A failed try is followed by a wait of InitialDelay, growing by Multiplier
// after each further failure up to MaxDelay, spread by Jitter. One delivery
// makes up to InProcess tries, sleeping in between; then the message goes
// back to the broker with the next wait (messagebus.RetryAfter), which
// redelivers it. After MaxAttempts tries in all the message is
// dead-lettered and acknowledged.
type RetryPolicy struct {
	// InitialDelay is the wait after the first failed try. Defaults to
	// 100ms.
	InitialDelay time.Duration
	// MaxDelay caps every wait. Defaults to 30s, or InitialDelay if that is
	// longer.
	MaxDelay time.Duration
	// Multiplier grows the wait after each failed try. Must be >= 1.
	// Defaults to 2.
	Multiplier float64
	// Jitter spreads each wait uniformly over wait × [1-Jitter, 1+Jitter]
	// (never above MaxDelay), so consumers that failed together do not
	// retry in lockstep. Must be <= 1. Defaults to 0.2; a negative value
	// turns jitter off.
	Jitter float64
	// MaxAttempts is the number of tries an event gets before it is
	// dead-lettered. Defaults to 10; a negative value never dead-letters
	// (an event that keeps failing then blocks its subscription).
	MaxAttempts int
	// InProcess is the number of tries one delivery makes before the
	// message goes back to the broker. Defaults to 3.
	InProcess int
}

// DefaultRetryPolicy is the policy of a Handler whose Config.RetryPolicy
// is zero.
var DefaultRetryPolicy = RetryPolicy{
	InitialDelay: 100 * time.Millisecond,
	MaxDelay:     30 * time.Second,
	Multiplier:   2,
	Jitter:       0.2,
	MaxAttempts:  10,
	InProcess:    3,
}

// withDefaults fills zero fields and reports every invalid one.
func (p RetryPolicy) withDefaults() (RetryPolicy, error) {
	var errs []error
	bad := func(field string, v any, reason string) {
		errs = append(errs, fmt.Errorf("handler: RetryPolicy.%s = %v: %s", field, v, reason))
	}
	if p.InitialDelay < 0 {
		bad("InitialDelay", p.InitialDelay, "must not be negative")
	}
	if p.MaxDelay < 0 {
		bad("MaxDelay", p.MaxDelay, "must not be negative")
	}
	if p.InitialDelay > 0 && p.MaxDelay > 0 && p.MaxDelay < p.InitialDelay {
		bad("MaxDelay", p.MaxDelay, fmt.Sprintf("must not be below InitialDelay %s", p.InitialDelay))
	}
	if p.Multiplier != 0 && (p.Multiplier < 1 || math.IsNaN(p.Multiplier) || math.IsInf(p.Multiplier, 0)) {
		bad("Multiplier", p.Multiplier, "must be a finite number >= 1")
	}
	if p.Jitter > 1 || math.IsNaN(p.Jitter) {
		bad("Jitter", p.Jitter, "must be <= 1 (negative turns jitter off)")
	}
	if p.InProcess < 0 {
		bad("InProcess", p.InProcess, "must not be negative")
	}
	if err := errors.Join(errs...); err != nil {
		return p, err
	}
	d := DefaultRetryPolicy
	p.InitialDelay = cmp.Or(p.InitialDelay, d.InitialDelay)
	p.MaxDelay = cmp.Or(p.MaxDelay, max(d.MaxDelay, p.InitialDelay))
	p.Multiplier = cmp.Or(p.Multiplier, d.Multiplier)
	switch {
	case p.Jitter == 0:
		p.Jitter = d.Jitter
	case p.Jitter < 0:
		p.Jitter = 0
	}
	p.MaxAttempts = cmp.Or(p.MaxAttempts, d.MaxAttempts)
	p.InProcess = cmp.Or(p.InProcess, d.InProcess)
	return p, nil
}

// exhausted reports whether failed try number n was the last one allowed.
func (p RetryPolicy) exhausted(n int) bool { return p.MaxAttempts > 0 && n >= p.MaxAttempts }

// delay is the wait after failed try number n (from 1): the policy as a
// cenkalti exponential backoff with jitter, never above MaxDelay.
func (p RetryPolicy) delay(n int) time.Duration {
	return runloop.Nth(backoff.ExponentialBackOff{
		InitialInterval: p.InitialDelay, MaxInterval: p.MaxDelay,
		Multiplier: p.Multiplier, RandomizationFactor: p.Jitter,
	}, n)
}
