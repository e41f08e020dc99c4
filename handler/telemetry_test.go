package handler_test

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// counters collects r and returns each int64 counter's value per
// attribute set, keyed like "cqrskit.handler=h,cqrskit.outcome=applied".
func counters(t *testing.T, r sdkmetric.Reader) map[string]map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
				out[m.Name] = map[string]int64{}
				for _, p := range sum.DataPoints {
					out[m.Name][p.Attributes.Encoded(attribute.DefaultEncoder())] = p.Value
				}
			}
		}
	}
	return out
}

// The handler counts what became of each delivery: applied or duplicate,
// retried (in process or by the broker, and why), dead-lettered.
func TestHandlerCounters(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	ctx := t.Context()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "h.db"), sqlite.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	failures := map[string]int{} // stream -> tries left to fail
	fn := func(_ context.Context, _ *sql.Tx, e event.Event) error {
		switch {
		case e.StreamID == "product-poison":
			return handler.Permanent(errors.New("cannot ever apply this"))
		case failures[e.StreamID] > 0:
			failures[e.StreamID]--
			return errors.New("not yet")
		}
		return nil
	}
	h, err := handler.Idempotent(handler.Config{
		Name: "names", Store: store, Func: fn, MeterProvider: mp, Logger: slog.New(slog.DiscardHandler),
		Sleep:       func(context.Context, time.Duration) error { return nil },
		RetryPolicy: handler.RetryPolicy{InProcess: 2, MaxAttempts: 4},
	})
	if err != nil {
		t.Fatal(err)
	}

	ok := renamed("product-1", "ok")
	handle := func(d messagebus.Delivery) error { return h.Handle(ctx, d) }
	if err := handle(ok); err != nil {
		t.Fatal(err)
	}
	if err := handle(ok); err != nil { // redelivered: a duplicate
		t.Fatal(err)
	}
	failures["product-2"] = 3 // two tries in process, then once more after a redelivery
	flaky := renamed("product-2", "flaky")
	if err := handle(flaky); err == nil {
		t.Fatal("a delivery failing every in-process try was acknowledged")
	}
	flaky.Attempt = 2
	if err := handle(flaky); err != nil {
		t.Fatal(err)
	}
	if err := handle(renamed("product-poison", "x")); err != nil {
		t.Fatal(err)
	}
	failures["product-3"] = 100 // never applies: dead-lettered after MaxAttempts
	hopeless := renamed("product-3", "hopeless")
	_ = handle(hopeless)
	hopeless.Attempt = 2
	if err := handle(hopeless); err != nil {
		t.Fatalf("after MaxAttempts: %v; want the dead letter acknowledged", err)
	}

	got := counters(t, reader)
	want := map[string]map[string]int64{
		"cqrskit.handler.processed": {
			"cqrskit.handler=names,cqrskit.outcome=applied":   2,
			"cqrskit.handler=names,cqrskit.outcome=duplicate": 1,
		},
		// product-2: 3 failed tries, each retried; product-3: 3 of its 4.
		"cqrskit.handler.retries":       {"cqrskit.cause=func,cqrskit.handler=names": 6},
		"cqrskit.handler.dead_lettered": {"cqrskit.handler=names": 2},
	}
	for name, pts := range want {
		for attrs, v := range pts {
			if got[name][attrs] != v {
				t.Errorf("%s{%s} = %d, want %d (all: %v)", name, attrs, got[name][attrs], v, got[name])
			}
		}
	}
}

// A batch counts each event once: applied, or duplicate when marked before
// or twice in the batch.
func TestHandleBatchCounters(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	ctx := t.Context()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "h.db"), sqlite.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := handler.Idempotent(handler.Config{
		Name: "batch", Store: store, MeterProvider: mp, Logger: slog.New(slog.DiscardHandler),
		Func: func(context.Context, *sql.Tx, event.Event) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	a, b := renamed("product-a", "a"), renamed("product-b", "b")
	if err := h.Handle(ctx, a); err != nil {
		t.Fatal(err)
	}
	for i, err := range h.HandleBatch(ctx, []messagebus.Delivery{a, b, b, renamed("product-c", "c")}) {
		if err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
	got := counters(t, reader)["cqrskit.handler.processed"]
	if got["cqrskit.handler=batch,cqrskit.outcome=applied"] != 3 || got["cqrskit.handler=batch,cqrskit.outcome=duplicate"] != 2 {
		t.Errorf("processed %v, want 3 applied (a alone; b and c in the batch) and 2 duplicates (a again, b twice)", got)
	}
}

// Deliveries handled through a Batcher keep a span each in their own
// message's trace, as with Handle; the batch that committed them has a span
// of its own, linked to each.
func TestBatcherSpans(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx := t.Context()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "h.db"), sqlite.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := handler.Idempotent(handler.Config{
		Name: "traced", Store: store, TracerProvider: tp, Logger: slog.New(slog.DiscardHandler),
		Func: func(context.Context, *sql.Tx, event.Event) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	// MaxBatch 2 with a long MaxWait: the two deliveries share one batch.
	b, err := handler.NewBatcher(h, handler.BatcherConfig{MaxBatch: 2, MaxWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}

	parents := map[string]string{ // trace ID -> the publisher's span ID
		"4bf92f3577b34da6a3ce929d0e0e4736": "00f067aa0ba902b7",
		"5bf92f3577b34da6a3ce929d0e0e4737": "10f067aa0ba902b8",
	}
	var wg sync.WaitGroup
	for traceID, spanID := range parents {
		d := renamed("product-"+traceID[:4], "x")
		d.Headers["traceparent"] = "00-" + traceID + "-" + spanID + "-01"
		wg.Go(func() {
			if err := b.Handle(ctx, d); err != nil {
				t.Errorf("trace %s: %v", traceID, err)
			}
		})
	}
	wg.Wait()
	// The batch span ends just after the batch hands back its results.
	for deadline := time.Now().Add(10 * time.Second); len(spans.GetSpans()) < 3 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}

	handled := map[string]tracetest.SpanStub{} // trace ID -> its handle span
	var batches []tracetest.SpanStub
	for _, sp := range spans.GetSpans() {
		switch sp.Name {
		case "handle product.renamed":
			handled[sp.SpanContext.TraceID().String()] = sp
		case "handle batch":
			batches = append(batches, sp)
		}
	}
	for traceID, spanID := range parents {
		sp, ok := handled[traceID]
		if !ok {
			t.Errorf("no handle span in trace %s; spans: %v", traceID, spans.GetSpans())
			continue
		}
		if got := sp.Parent.SpanID().String(); got != spanID {
			t.Errorf("trace %s: handle span's parent %s, want the publisher's %s", traceID, got, spanID)
		}
	}
	if len(batches) != 1 {
		t.Fatalf("%d batch spans, want 1", len(batches))
	}
	batch := batches[0]
	if _, inOne := parents[batch.SpanContext.TraceID().String()]; inOne || batch.Parent.IsValid() {
		t.Errorf("batch span in trace %s under %s, want a root of its own", batch.SpanContext.TraceID(), batch.Parent.SpanID())
	}
	linked := map[string]bool{}
	for _, l := range batch.Links {
		linked[l.SpanContext.SpanID().String()] = true
	}
	for traceID, sp := range handled {
		if !linked[sp.SpanContext.SpanID().String()] {
			t.Errorf("batch span not linked to trace %s's handle span", traceID)
		}
	}
}
