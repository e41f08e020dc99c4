package es

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

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
