package outbox

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
	"github.com/cqrskit/cqrskit/messagebus"
)

// scopeName is the instrumentation scope of the relay's spans and metrics.
const scopeName = "github.com/cqrskit/cqrskit/outbox"

// statsTimeout bounds the outbox query behind the backlog gauges, so a
// slow database cannot hold up a metrics collection.
const statsTimeout = 5 * time.Second

// Operations of the cqrskit.outbox.errors counter.
const (
	opRead       = "read"
	opPublish    = "publish"
	opDelete     = "delete"
	opLeadership = "leadership"
	opPark       = "park"
)

// relayTelemetry holds a relay's tracer and instruments.
type relayTelemetry struct {
	tracer    trace.Tracer
	meter     metric.Meter
	published metric.Int64Counter
	errors    metric.Int64Counter
	backlog   metric.Int64ObservableGauge
	oldestAge metric.Float64ObservableGauge
	active    metric.Int64ObservableGauge
	parked    metric.Int64Counter
	parkedNow metric.Int64ObservableGauge
	errOps    map[string]metric.AddOption
}

func newRelayTelemetry(tp trace.TracerProvider, mp metric.MeterProvider) relayTelemetry {
	t := relayTelemetry{tracer: tp.Tracer(scopeName), meter: mp.Meter(scopeName)}
	var errs [7]error
	t.published, errs[0] = t.meter.Int64Counter("cqrskit.outbox.published",
		metric.WithUnit("{event}"),
		metric.WithDescription("Events the relay published, had acknowledged by the broker and deleted from the outbox."))
	t.errors, errs[1] = t.meter.Int64Counter("cqrskit.outbox.errors",
		metric.WithUnit("{error}"),
		metric.WithDescription("Relay failures by operation: read (the outbox), publish (per event), delete (acknowledged rows), leadership."))
	t.backlog, errs[2] = t.meter.Int64ObservableGauge("cqrskit.outbox.backlog",
		metric.WithUnit("{event}"),
		metric.WithDescription("Unpublished events in the outbox, observed by a running relay."))
	t.oldestAge, errs[3] = t.meter.Float64ObservableGauge("cqrskit.outbox.oldest_age",
		metric.WithUnit("s"),
		metric.WithDescription("How long the oldest unpublished outbox row has waited; 0 when the outbox is empty."))
	t.active, errs[4] = t.meter.Int64ObservableGauge("cqrskit.outbox.relay.active",
		metric.WithUnit("{relay}"),
		metric.WithDescription("1 while this relay holds leadership and publishes, 0 while it stands by."))
	t.parked, errs[5] = t.meter.Int64Counter("cqrskit.outbox.parked",
		metric.WithUnit("{event}"),
		metric.WithDescription("Events the broker rejected for good, which the relay parked; each holds its stream back until retried or discarded."))
	t.parkedNow, errs[6] = t.meter.Int64ObservableGauge("cqrskit.outbox.parked_rows",
		metric.WithUnit("{event}"),
		metric.WithDescription("Parked outbox rows waiting for an operator (cqrskit outbox parked list | retry | discard)."))
	if err := errors.Join(errs[:]...); err != nil {
		otel.Handle(fmt.Errorf("outbox relay: create metrics: %w", err))
		return newRelayTelemetry(tp, noop.NewMeterProvider())
	}
	t.errOps = map[string]metric.AddOption{}
	for _, op := range []string{opRead, opPublish, opDelete, opLeadership, opPark} {
		t.errOps[op] = metric.WithAttributeSet(attribute.NewSet(attribute.String("cqrskit.operation", op)))
	}
	return t
}

func (t *relayTelemetry) failed(ctx context.Context, op string, n int) {
	t.errors.Add(ctx, int64(n), t.errOps[op])
}

// registerGauges makes the backlog gauges observable while the relay runs.
// Their callback reads Store.Stats once per collection, never otherwise.
func (r *Relay) registerGauges() (unregister func()) {
	t := &r.tel
	reg, err := t.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		o.ObserveInt64(t.active, boolInt(r.active.Load()))
		ctx, cancel := context.WithTimeout(ctx, statsTimeout)
		defer cancel()
		st, err := r.cfg.Store.Stats(ctx)
		if err != nil {
			// The relay reports database trouble itself; a scrape every few
			// seconds need not repeat it at warning level.
			r.cfg.Logger.DebugContext(ctx, "outbox relay: metrics: cannot read the outbox stats", "err", err)
			return nil
		}
		o.ObserveInt64(t.backlog, st.Backlog)
		o.ObserveInt64(t.parkedNow, st.Parked)
		var age float64
		if !st.OldestAt.IsZero() {
			age = max(0, time.Since(st.OldestAt).Seconds())
		}
		o.ObserveFloat64(t.oldestAge, age)
		return nil
	}, t.backlog, t.oldestAge, t.active, t.parkedNow)
	if err != nil {
		otel.Handle(fmt.Errorf("outbox relay: register backlog gauges: %w", err))
		return func() {}
	}
	return func() {
		if err := reg.Unregister(); err != nil {
			otel.Handle(fmt.Errorf("outbox relay: unregister backlog gauges: %w", err))
		}
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// startDrainSpan starts the span of one batch.
func (r *Relay) startDrainSpan(ctx context.Context, batch []Record) (context.Context, trace.Span) {
	ctx, span := r.tel.tracer.Start(ctx, "outbox.drain")
	if span.IsRecording() {
		span.SetAttributes(
			attribute.Int("messaging.batch.message_count", len(batch)),
			attribute.Int64("cqrskit.outbox.first_id", batch[0].ID),
			attribute.Int64("cqrskit.outbox.last_id", batch[len(batch)-1].ID),
		)
	}
	return ctx, span
}

// startPublishSpans starts one producer span per message, a child of the
// trace context its event was appended in (its traceparent header), or of
// the batch span (ctx) when the event has none, and linked to the batch
// span. Each span's context replaces the message's traceparent and
// tracestate, so the consumer's span becomes its child.
func (r *Relay) startPublishSpans(ctx context.Context, batch []Record, msgs []messagebus.Message) []trace.Span {
	tc := propagation.TraceContext{}
	link := trace.WithLinks(trace.LinkFromContext(ctx))
	spans := make([]trace.Span, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		carrier := propagation.MapCarrier(m.Headers)
		parent := tc.Extract(ctx, carrier)
		sctx, span := r.tel.tracer.Start(parent, "publish "+m.Topic, trace.WithSpanKind(trace.SpanKindProducer), link)
		spans[i] = span
		if span.IsRecording() {
			span.SetAttributes(
				attribute.String("messaging.operation.type", "send"),
				attribute.String("messaging.destination.name", m.Topic),
				attribute.String("messaging.message.id", m.ID),
				attribute.String("cqrskit.event.type", batch[i].Event.Type),
				attribute.String("cqrskit.stream.id", batch[i].Event.StreamID),
				attribute.Int64("cqrskit.stream.version", batch[i].Event.Version),
				attribute.Int64("cqrskit.outbox.id", batch[i].ID),
			)
		}
		// A tracer that records nothing hands the parent on: the headers
		// hold it already.
		if sc := span.SpanContext(); sc.IsValid() && !sc.Equal(trace.SpanContextFromContext(parent)) {
			delete(m.Headers, event.HeaderTraceState)
			tc.Inject(sctx, carrier)
		}
	}
	return spans
}

// endPublishSpans ends the spans of a published batch: failed maps message
// indexes to their errors; a non-nil all failed every message.
func endPublishSpans(spans []trace.Span, failed map[int]error, all error) {
	for i, span := range spans {
		err := all
		if err == nil {
			err = failed[i]
		}
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// endDrainSpan ends a batch span with the batch's result.
func endDrainSpan(span trace.Span, published int, err error) {
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("cqrskit.outbox.published", published))
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
