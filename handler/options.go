package handler

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Option changes one Handler's configuration.
type Option func(*config)

type config struct {
	policy RetryPolicy
	logger *slog.Logger
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	random func() float64
	tp     trace.TracerProvider
	mp     metric.MeterProvider
}

func defaultConfig() config {
	return config{
		policy: DefaultRetryPolicy,
		logger: slog.Default(),
		now:    time.Now,
		sleep:  sleep,
		random: rand.Float64,
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
