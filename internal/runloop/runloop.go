// Package runloop is the wake/poll/backoff loop of the framework's
// background workers (the outbox relay, projections): step while there is
// work, wait for a wake-up or the poll interval when idle, and back off
// exponentially after a failure. It also builds the one backoff every
// retry in the framework uses (cenkalti/backoff, exponential with jitter).
package runloop

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Config configures Run.
type Config struct {
	// Step does one unit of work. more reports that another step may find
	// work at once (a full batch, rows that committed meanwhile); Run then
	// steps again without waiting. Required.
	Step func(ctx context.Context) (more bool, err error)
	// Wake, when not nil, ends an idle wait early: a notification that work
	// arrived. It does not cut a backoff short.
	Wake <-chan struct{}
	// Poll is how long an idle loop waits for a wake-up before it steps
	// again anyway. Required.
	Poll time.Duration
	// BackOff gives the wait after a failed step. It is reset after each
	// successful one. Required; see New.
	BackOff backoff.BackOff
	// OnError, when set, is told of each failed step and the wait before
	// the next (to log it or record it).
	OnError func(ctx context.Context, err error, retryIn time.Duration)
	// Final, when set, reports a step error that must end Run instead of
	// being retried; Run returns it.
	Final func(err error) bool
}

// Run steps until ctx ends, returning ctx.Err(), or until a step fails
// with an error that cfg.Final reports, returning that error.
func Run(ctx context.Context, cfg Config) error {
	cfg.BackOff.Reset()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		more, err := cfg.Step(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && cfg.Final != nil && cfg.Final(err) {
			return err
		}
		var wait time.Duration
		switch {
		case err != nil:
			wait = cfg.BackOff.NextBackOff()
			if cfg.OnError != nil {
				cfg.OnError(ctx, err, wait)
			}
		case more:
			cfg.BackOff.Reset()
			continue
		default:
			cfg.BackOff.Reset()
			wait = cfg.Poll
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-cfg.Wake:
			if err == nil {
				continue
			}
			// After a failure, keep the backoff even when woken.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
			}
		case <-timer.C:
		}
	}
}
