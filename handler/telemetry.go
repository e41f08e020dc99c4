package handler

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
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

// startItemSpan starts the span of one delivery, in its message's trace.
func (h *Handler) startItemSpan(ctx context.Context, it *item) (context.Context, trace.Span) {
	return h.startSpan(ctx, "handle "+cmp.Or(it.e.Type, "message"), it.d.Headers, nil,
		attribute.String("cqrskit.event.id", it.e.ID.String()),
		attribute.String("cqrskit.event.type", it.e.Type),
		attribute.String("cqrskit.stream.id", it.e.StreamID),
		attribute.Int("messaging.delivery.attempt", it.d.Attempt))
}

// startSpan starts a consumer span, a child of the trace context in
// headers when there is one, else linked to links' contexts.
func (h *Handler) startSpan(ctx context.Context, name string, headers map[string]string, links []trace.Link, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if headers != nil {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(headers))
	}
	attrs = append(attrs, attribute.String("cqrskit.handler", h.name))
	return h.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attrs...), trace.WithLinks(links...))
}

// endSpan records err, if any, on span and ends it.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// startBatchSpan starts one span for a batch, linked to each event's trace.
func (h *Handler) startBatchSpan(ctx context.Context, items []*item) (context.Context, trace.Span) {
	links := make([]trace.Link, 0, len(items))
	for _, it := range items {
		if it.d.Headers == nil {
			continue
		}
		sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier(it.d.Headers)))
		if sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	return h.startSpan(ctx, "handle batch", nil, links, attribute.Int("messaging.batch.message_count", len(items)))
}

// startBatcherSpan starts the span of a batch a Batcher cut from several
// deliveries. It is a trace of its own, linked to each delivery's span:
// it belongs to no single delivery's trace.
func (h *Handler) startBatcherSpan(ctx context.Context, calls []*call) (context.Context, trace.Span) {
	links := make([]trace.Link, 0, len(calls))
	for _, c := range calls {
		if sc := trace.SpanContextFromContext(c.ctx); sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	ctx = trace.ContextWithSpanContext(ctx, trace.SpanContext{}) // not the first caller's span
	return h.startSpan(ctx, "handle batch", nil, links, attribute.Int("messaging.batch.message_count", len(calls)))
}
