package es_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
)

// Every append is counted and timed by outcome; conflicts have a counter
// of their own; events are counted once stored.
func TestAppendMetrics(t *testing.T) {
	t.Parallel()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	b := setup(t, func(_ *bundle, c *es.RepositoryConfig[*Account]) { c.MeterProvider = mp })
	ctx := t.Context()

	acct := &Account{}
	must(t, acct.Open("m", "ann"))
	must(t, acct.Deposit(5))
	must(t, b.repo.Save(ctx, acct))
	stale := &Account{}
	must(t, stale.Open("m", "bob"))
	if err := b.repo.Save(ctx, stale); !errors.Is(err, event.ErrConcurrencyConflict) {
		t.Fatalf("second open: %v, want a conflict", err)
	}

	var rm metricdata.ResourceMetrics
	must(t, reader.Collect(ctx, &rm))
	sums := map[string]int64{}
	var timed uint64
	for _, m := range rm.ScopeMetrics[0].Metrics {
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, p := range d.DataPoints {
				sums[m.Name+"{"+p.Attributes.Encoded(attribute.DefaultEncoder())+"}"] = p.Value
			}
		case metricdata.Histogram[float64]:
			for _, p := range d.DataPoints {
				timed += p.Count
			}
		}
	}
	want := map[string]int64{
		"cqrskit.es.appends{cqrskit.outcome=ok,cqrskit.stream_type=account}":       1,
		"cqrskit.es.appends{cqrskit.outcome=conflict,cqrskit.stream_type=account}": 1,
		"cqrskit.es.append.conflicts{cqrskit.stream_type=account}":                 1,
		"cqrskit.es.events.appended{cqrskit.stream_type=account}":                  2,
	}
	for k, v := range want {
		if sums[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, sums[k], v, sums)
		}
	}
	if timed != 2 {
		t.Errorf("cqrskit.es.append.duration has %d samples, want 2", timed)
	}
}

// Save's span holds an es.Append span, whose context the events carry.
func TestAppendSpan(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	b := setup(t, func(_ *bundle, c *es.RepositoryConfig[*Account]) { c.TracerProvider = tp })
	acct := &Account{}
	must(t, acct.Open("s", "ann"))
	must(t, b.repo.Save(t.Context(), acct))

	got := spans.GetSpans()
	if len(got) != 2 || got[0].Name != "es.Append" || got[1].Name != "es.Save" {
		t.Fatalf("spans %v, want es.Append inside es.Save", got.Snapshots())
	}
	if got[0].Parent.SpanID() != got[1].SpanContext.SpanID() {
		t.Errorf("es.Append's parent is %s, want es.Save %s", got[0].Parent.SpanID(), got[1].SpanContext.SpanID())
	}
	for e, err := range b.store.Load(t.Context(), "account-s", 1) {
		must(t, err)
		if want := "00-" + got[0].SpanContext.TraceID().String() + "-" + got[0].SpanContext.SpanID().String() + "-01"; e.Metadata.TraceParent != want {
			t.Errorf("traceparent %q, want %q", e.Metadata.TraceParent, want)
		}
	}
}
