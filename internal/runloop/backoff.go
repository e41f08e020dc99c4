package runloop

import (
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Jitter is the randomization factor of New's backoff: each wait is spread
// uniformly over ±20% of its interval, so workers that failed together do
// not retry in lockstep.
const Jitter = 0.2

// New returns the framework's backoff: waits from initial doubling up to
// max, each spread by Jitter.
func New(initial, max time.Duration) *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{InitialInterval: initial, MaxInterval: max, Multiplier: 2, RandomizationFactor: Jitter}
	b.Reset()
	return b
}

// Nth returns the wait before retry n (from 1; n < 1 counts as 1) of an
// exponential backoff configured like b, for callers that count their
// failures rather than keep a backoff's state (a redelivered message
// knows its attempt number). Unlike b.NextBackOff it never returns more
// than b.MaxInterval, also after jitter.
func Nth(b backoff.ExponentialBackOff, n int) time.Duration {
	jitter := b.RandomizationFactor
	b.RandomizationFactor = 0 // b is a copy
	b.Reset()
	var prev time.Duration
	for i := 1; i < n; i++ {
		d := b.NextBackOff()
		if d >= b.MaxInterval || d == prev {
			break // the interval stays where it is from here on
		}
		prev = d
	}
	b.RandomizationFactor = jitter
	return min(b.NextBackOff(), b.MaxInterval)
}
