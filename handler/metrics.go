package handler

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// scopeName is the instrumentation scope of the handler's spans and
// metrics.
const scopeName = "github.com/cqrskit/cqrskit/handler"

// handlerMetrics are one handler's counters, with their attribute sets
// computed once.
type handlerMetrics struct {
	processed    metric.Int64Counter
	retries      metric.Int64Counter
	deadLettered metric.Int64Counter

	applied, duplicate metric.AddOption // processed, by outcome
	retryFunc, retryDB metric.AddOption // retries, by cause
	retryUnknown       metric.AddOption
	named              metric.AddOption // the handler name alone
}

func newHandlerMetrics(mp metric.MeterProvider, name string) handlerMetrics {
	m := mp.Meter(scopeName)
	var hm handlerMetrics
	var errs [3]error
	hm.processed, errs[0] = m.Int64Counter("cqrskit.handler.processed",
		metric.WithUnit("{event}"),
		metric.WithDescription("Events a handler committed (outcome applied) or skipped as handled before (outcome duplicate)."))
	hm.retries, errs[1] = m.Int64Counter("cqrskit.handler.retries",
		metric.WithUnit("{retry}"),
		metric.WithDescription("Failed tries that will be tried again, in process or by redelivery; cause func (the handler failed), database, or unknown_type (an event type the binary does not know)."))
	hm.deadLettered, errs[2] = m.Int64Counter("cqrskit.handler.dead_lettered",
		metric.WithUnit("{event}"),
		metric.WithDescription("Messages a handler gave up on and stored as dead letters."))
	if err := errors.Join(errs[:]...); err != nil {
		otel.Handle(fmt.Errorf("handler %s: create metrics: %w", name, err))
		return newHandlerMetrics(noop.NewMeterProvider(), name)
	}
	h := attribute.String("cqrskit.handler", name)
	set := func(k, v string) metric.AddOption {
		return metric.WithAttributeSet(attribute.NewSet(h, attribute.String(k, v)))
	}
	hm.applied, hm.duplicate = set("cqrskit.outcome", "applied"), set("cqrskit.outcome", "duplicate")
	hm.retryFunc, hm.retryDB = set("cqrskit.cause", "func"), set("cqrskit.cause", "database")
	hm.retryUnknown = set("cqrskit.cause", "unknown_type")
	hm.named = metric.WithAttributeSet(attribute.NewSet(h))
	return hm
}

// committed counts events that took effect and duplicates skipped.
func (hm *handlerMetrics) committed(ctx context.Context, applied, duplicates int) {
	if applied > 0 {
		hm.processed.Add(ctx, int64(applied), hm.applied)
	}
	if duplicates > 0 {
		hm.processed.Add(ctx, int64(duplicates), hm.duplicate)
	}
}
