package handler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Config configures a Handler. The zero value of each optional field means
// its default.
type Config struct {
	// Name identifies the handler's processed marks and dead letters. Keep
	// it stable across deployments, and give every handler its own: two
	// handlers sharing a name would each skip events the other handled.
	// Required, UTF-8.
	Name string
	// Store records the processed marks and dead letters; the handler's
	// transactions are begun on Store.DB(). Required.
	Store Store
	// Func applies one event. Required.
	Func Func
	// BatchFunc, when set, makes HandleBatch (and a Batcher) call it once
	// per batch instead of Func once per event. If it fails, the batch is
	// rolled back and its events are handled one at a time with Func, so
	// one bad event cannot hold back its neighbours. It must have the same
	// effect as Func applied to each event in order. Defaults to none.
	BatchFunc BatchFunc
	// RetryPolicy says how often and how patiently a failing event is
	// tried. Its zero fields take DefaultRetryPolicy's values.
	RetryPolicy RetryPolicy
	// UnknownEvents says what the handler does with events of a type (or
	// schema version) it does not know. Defaults to RetryUnknownEvents.
	UnknownEvents UnknownEvents
	// Logger receives failed tries, dead letters and panics. Defaults to
	// slog.Default().
	Logger *slog.Logger
	// TracerProvider receives the handler's spans (see the package
	// documentation, Observability). Defaults to otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider receives the handler's metrics. Defaults to
	// otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
	// Clock gives dead-letter times and Prune's cut-off. Defaults to
	// time.Now. For tests.
	Clock func() time.Time
	// Sleep waits between in-process tries; it must return ctx's error if
	// ctx ends first. Defaults to a timer. Tests set it to observe backoff
	// delays without waiting for them.
	Sleep func(ctx context.Context, d time.Duration) error
}

// withDefaults fills zero fields and reports every invalid one, naming the
// field and its value.
func (c Config) withDefaults() (Config, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("handler: "+format, args...))
	}
	if c.Name == "" || !utf8.ValidString(c.Name) {
		bad("Config.Name %q: must be non-empty UTF-8", c.Name)
	}
	if c.Store == nil {
		bad("Config.Store is required")
	}
	if c.Func == nil {
		bad("Config.Func is required")
	}
	policy, err := c.RetryPolicy.withDefaults()
	if err != nil {
		errs = append(errs, err)
	}
	if c.UnknownEvents != RetryUnknownEvents && c.UnknownEvents != DeadLetterUnknownEvents {
		bad("Config.UnknownEvents = %d: want RetryUnknownEvents or DeadLetterUnknownEvents", c.UnknownEvents)
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	c.RetryPolicy = policy
	c.Logger = cmp.Or(c.Logger, slog.Default())
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
	}
	if c.MeterProvider == nil {
		c.MeterProvider = otel.GetMeterProvider()
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	return c, nil
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
