package es

import (
	"context"
	"maps"

	"github.com/cqrskit/cqrskit/event"
	"go.opentelemetry.io/otel/propagation"
)

type metadataKey struct{}

// WithMetadata returns a context carrying md. Save attaches a copy of it to
// every event it appends: the correlation and causation IDs and user keys
// of the request that caused them. The context carries request-scoped
// metadata; the aggregate and its events stay free of it.
//
// When md has no TraceParent and ctx carries a valid OpenTelemetry span
// context, Save fills TraceParent and TraceState from the span, so the trace
// follows the event through the outbox to its handlers.
func WithMetadata(ctx context.Context, md event.Metadata) context.Context {
	return context.WithValue(ctx, metadataKey{}, md.Clone())
}

// MetadataFrom returns a copy of the metadata set by WithMetadata, or the
// zero Metadata.
func MetadataFrom(ctx context.Context) event.Metadata {
	md, _ := ctx.Value(metadataKey{}).(event.Metadata)
	return md.Clone()
}

// eventMetadata is the metadata for the events of one save: the context's
// metadata plus the active trace context unless the caller set one.
func eventMetadata(ctx context.Context) event.Metadata {
	md := MetadataFrom(ctx)
	if md.TraceParent == "" {
		carrier := propagation.MapCarrier{}
		propagation.TraceContext{}.Inject(ctx, carrier)
		md.TraceParent = carrier.Get(event.HeaderTraceParent)
		md.TraceState = carrier.Get(event.HeaderTraceState)
	}
	return md
}

// withExtra returns md with extra keys added; md is not modified.
func withExtra(md event.Metadata, extra map[string]string) event.Metadata {
	md = md.Clone()
	if len(extra) > 0 {
		if md.Extra == nil {
			md.Extra = make(map[string]string, len(extra))
		}
		maps.Copy(md.Extra, extra)
	}
	return md
}
