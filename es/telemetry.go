package es

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
	"go.opentelemetry.io/otel/trace"

	"github.com/cqrskit/cqrskit/event"
)

// scopeName is the instrumentation scope of the package's spans and
// metrics.
const scopeName = "github.com/cqrskit/cqrskit/es"

// Append outcomes, the cqrskit.outcome attribute of the append metrics.
const (
	outcomeOK       = "ok"
	outcomeConflict = "conflict"
	outcomeError    = "error"
)

// latencyBuckets suit database calls, in seconds: 0.5ms to 10s.
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// repoMetrics are one repository's append instruments, with the attribute
// sets computed once.
type repoMetrics struct {
	appends   metric.Int64Counter
	events    metric.Int64Counter
	duration  metric.Float64Histogram
	conflicts metric.Int64Counter

	base      metric.MeasurementOption
	byOutcome map[string]metric.MeasurementOption
}

func newRepoMetrics(mp metric.MeterProvider, streamType string) repoMetrics {
	m := mp.Meter(scopeName)
	var errs [4]error
	var rm repoMetrics
	rm.appends, errs[0] = m.Int64Counter("cqrskit.es.appends",
		metric.WithUnit("{append}"),
		metric.WithDescription("Appends of a save's events to their stream, by outcome (ok, conflict, error)."))
	rm.events, errs[1] = m.Int64Counter("cqrskit.es.events.appended",
		metric.WithUnit("{event}"),
		metric.WithDescription("Events appended by successful saves."))
	rm.duration, errs[2] = m.Float64Histogram("cqrskit.es.append.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Time the event store took to append a save's events (and outbox rows), by outcome."),
		metric.WithExplicitBucketBoundaries(latencyBuckets...))
	rm.conflicts, errs[3] = m.Int64Counter("cqrskit.es.append.conflicts",
		metric.WithUnit("{conflict}"),
		metric.WithDescription("Appends rejected because the stream was not at the expected version."))
	if err := errors.Join(errs[:]...); err != nil {
		otel.Handle(fmt.Errorf("es: create metrics: %w", err))
		return newRepoMetrics(noop.NewMeterProvider(), streamType)
	}
	st := attribute.String("cqrskit.stream_type", streamType)
	rm.base = metric.WithAttributeSet(attribute.NewSet(st))
	rm.byOutcome = map[string]metric.MeasurementOption{}
	for _, o := range []string{outcomeOK, outcomeConflict, outcomeError} {
		rm.byOutcome[o] = metric.WithAttributeSet(attribute.NewSet(st, attribute.String("cqrskit.outcome", o)))
	}
	return rm
}

// recordAppend records one append of n events that started at start.
func (rm *repoMetrics) recordAppend(ctx context.Context, start time.Time, n int, err error) {
	elapsed := time.Since(start).Seconds()
	outcome := outcomeOK
	switch {
	case err == nil:
		rm.events.Add(ctx, int64(n), rm.base)
	case errors.Is(err, event.ErrConcurrencyConflict):
		outcome = outcomeConflict
		rm.conflicts.Add(ctx, 1, rm.base)
	default:
		outcome = outcomeError
	}
	attrs := rm.byOutcome[outcome]
	rm.appends.Add(ctx, 1, attrs)
	rm.duration.Record(ctx, elapsed, attrs)
}

// startAppendSpan starts the es.Append span of one save: n events appended
// to stream, expected at version (0: a new stream).
func (r *Repository[T]) startAppendSpan(ctx context.Context, stream string, version int64, n int) (context.Context, trace.Span) {
	return r.tracer.Start(ctx, "es.Append", trace.WithAttributes(
		attribute.String("cqrskit.stream_type", r.cfg.StreamType),
		attribute.String("cqrskit.stream.id", stream),
		attribute.Int64("cqrskit.stream.expected_version", version),
		attribute.Int("cqrskit.event.count", n),
	))
}

func endAppendSpan(span trace.Span, err error) {
	endSpan(span, err)
	span.End()
}

// endSpan records err, if any, on span and returns it; the caller ends
// span.
func endSpan(span trace.Span, err error) error {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// startSpan starts the span of one repository call on aggregate id.
func (r *Repository[T]) startSpan(ctx context.Context, name, id string) (context.Context, trace.Span) {
	return r.tracer.Start(ctx, name, trace.WithAttributes(
		attribute.String("cqrskit.stream_type", r.cfg.StreamType),
		attribute.String("cqrskit.aggregate_id", id),
	))
}
