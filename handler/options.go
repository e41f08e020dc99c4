package handler

import (
	"context"
	"database/sql"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cqrskit/cqrskit/event"
)

// Option changes one Handler's configuration.
type Option func(*config)

type config struct {
	policy  RetryPolicy
	logger  *slog.Logger
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) error
	tp      trace.TracerProvider
	mp      metric.MeterProvider
	batch   BatchFunc
	unknown UnknownEvents
}

func defaultConfig() config {
	return config{
		policy: DefaultRetryPolicy,
		logger: slog.Default(),
		now:    time.Now,
		sleep:  sleep,
		tp:     otel.GetTracerProvider(),
		mp:     otel.GetMeterProvider(),
	}
}

// WithRetryPolicy sets the retry policy; its zero fields take the defaults
// of DefaultRetryPolicy.
func WithRetryPolicy(p RetryPolicy) Option {
	return func(c *config) { c.policy = p }
}

// WithLogger sets the logger for failed tries, dead letters and panics.
// Defaults to slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithClock sets the clock for dead-letter times and Prune. Defaults to
// time.Now. For tests.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

// WithSleep sets the function that waits between in-process tries. It must
// return ctx's error if ctx ends first. Defaults to a timer. Tests use it
// to observe backoff delays without waiting for them.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(c *config) {
		if sleep != nil {
			c.sleep = sleep
		}
	}
}

// WithTracerProvider sets where spans go. Defaults to the global provider
// (otel.GetTracerProvider()).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp != nil {
			c.tp = tp
		}
	}
}

// WithMeterProvider sets where the handler's metrics go (see the package
// documentation, Observability). Defaults to the global provider
// (otel.GetMeterProvider()).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if mp != nil {
			c.mp = mp
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// BatchFunc applies, inside tx, every event of a HandleBatch call that is
// new to the handler (already-processed events are left out), for read
// models that write set-based: one multi-row statement per batch instead
// of one per event.
type BatchFunc func(ctx context.Context, tx *sql.Tx, events []event.Event) error

// WithBatchFunc makes HandleBatch (and a Batcher) call fn once per batch
// instead of the Func once per event. If fn fails, the batch is rolled back
// and its events are handled one at a time with the Func, so one bad event
// cannot hold back its neighbours. fn must have the same effect as the Func
// applied to each event in order.
func WithBatchFunc(fn BatchFunc) Option {
	return func(c *config) { c.batch = fn }
}
