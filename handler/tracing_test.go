package handler_test

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

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
	h, err := handler.Idempotent("traced", store, func(context.Context, *sql.Tx, event.Event) error { return nil },
		handler.WithTracerProvider(tp), handler.WithLogger(slog.New(slog.DiscardHandler)))
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
