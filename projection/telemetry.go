package projection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/cqrskit/cqrskit/event"
)

// scopeName is the instrumentation scope of the projection's spans and
// metrics.
const scopeName = "github.com/cqrskit/cqrskit/projection"

// countTimeout bounds the count behind the lag gauge, so a slow database
// cannot hold up a metrics collection.
const countTimeout = 5 * time.Second

// telemetry holds a projection's tracer and instruments.
type telemetry struct {
	tracer  trace.Tracer
	meter   metric.Meter
	applied metric.Int64Counter
	lag     metric.Int64ObservableGauge
	name    attribute.KeyValue
	attrs   metric.MeasurementOption
}

func newTelemetry(tp trace.TracerProvider, mp metric.MeterProvider, name string) telemetry {
	t := telemetry{tracer: tp.Tracer(scopeName), meter: mp.Meter(scopeName), name: attribute.String("cqrskit.projection", name)}
	var errs [2]error
	t.applied, errs[0] = t.meter.Int64Counter("cqrskit.projection.events.applied",
		metric.WithUnit("{event}"),
		metric.WithDescription("Events a projection applied and committed with its checkpoint."))
	t.lag, errs[1] = t.meter.Int64ObservableGauge("cqrskit.projection.lag",
		metric.WithUnit("{event}"),
		metric.WithDescription("Committed events a running projection has not applied yet (needs a store that counts: Config.Counter)."))
	if err := errors.Join(errs[:]...); err != nil {
		otel.Handle(fmt.Errorf("projection %s: create metrics: %w", name, err))
		return newTelemetry(tp, noop.NewMeterProvider(), name)
	}
	t.attrs = metric.WithAttributeSet(attribute.NewSet(t.name))
	return t
}

// noteCursor publishes the cursor for the lag gauge; p.mu is held.
func (p *Projection) noteCursor() {
	if p.known {
		c := p.cursor
		p.seen.Store(&c)
	}
}

// registerLag makes the lag gauge observable while Run runs, if the store
// can count. The callback counts once per collection, never otherwise, from
// the last cursor this projection saw (it does not wait for a batch).
func (p *Projection) registerLag() (unregister func()) {
	if p.cfg.Counter == nil {
		return func() {}
	}
	t := &p.tel
	reg, err := t.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		c := p.seen.Load()
		if c == nil {
			return nil // the checkpoint is not read yet
		}
		ctx, cancel := context.WithTimeout(ctx, countTimeout)
		defer cancel()
		n, err := p.cfg.Counter.CountEvents(ctx, *c)
		if err != nil {
			p.cfg.Logger.DebugContext(ctx, "projection: metrics: cannot count the events behind", "projection", p.cfg.Name, "err", err)
			return nil
		}
		o.ObserveInt64(t.lag, n, t.attrs)
		return nil
	}, t.lag)
	if err != nil {
		otel.Handle(fmt.Errorf("projection %s: register lag gauge: %w", p.cfg.Name, err))
		return func() {}
	}
	return func() {
		if err := reg.Unregister(); err != nil {
			otel.Handle(fmt.Errorf("projection %s: unregister lag gauge: %w", p.cfg.Name, err))
		}
	}
}

// startBatchSpan starts the span of one batch, linked to the trace context
// each event was appended in (when the span records).
func (p *Projection) startBatchSpan(ctx context.Context, evs []event.Event) (context.Context, trace.Span) {
	ctx, span := p.tel.tracer.Start(ctx, "projection.batch")
	if !span.IsRecording() {
		return ctx, span
	}
	span.SetAttributes(p.tel.name,
		attribute.Int("cqrskit.event.count", len(evs)),
		attribute.Int64("cqrskit.position.first", evs[0].Position),
		attribute.Int64("cqrskit.position.last", evs[len(evs)-1].Position))
	tc := propagation.TraceContext{}
	for _, e := range evs {
		if e.Metadata.TraceParent == "" {
			continue
		}
		carrier := propagation.MapCarrier{event.HeaderTraceParent: e.Metadata.TraceParent}
		if e.Metadata.TraceState != "" {
			carrier[event.HeaderTraceState] = e.Metadata.TraceState
		}
		if sc := trace.SpanContextFromContext(tc.Extract(context.Background(), carrier)); sc.IsValid() {
			span.AddLink(trace.Link{SpanContext: sc})
		}
	}
	return ctx, span
}

// endBatchSpan ends a batch span: n events applied, err the batch's error.
func endBatchSpan(span trace.Span, n int, err error) {
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("cqrskit.events.applied", n))
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
