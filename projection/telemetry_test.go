package projection_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/projection"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// metric collects r and returns the value of the int64 gauge or counter
// name (one point: the projection's), and whether it was reported.
func metric(t *testing.T, r sdkmetric.Reader, name string) (int64, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				return d.DataPoints[0].Value, true
			case metricdata.Sum[int64]:
				return d.DataPoints[0].Value, true
			}
		}
	}
	return 0, false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The lag gauge counts the events a running projection has not applied;
// the applied counter and one span per batch follow its progress.
func TestLagGaugeAndBatchSpans(t *testing.T) {
	ctx := t.Context()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "p.db"), sqlite.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	p, err := projection.New(projection.Config{
		Name: "counted", Events: store, Checkpoints: store, BatchSize: 3,
		Apply: func(ctx context.Context, _ *sql.Tx, _ event.Event) error {
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
		Logger: slog.New(slog.DiscardHandler), MeterProvider: mp, TracerProvider: tp, PollInterval: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	lag := func() int64 { v, _ := metric(t, reader, "cqrskit.projection.lag"); return v }
	waitFor(t, "a lag of 0 on an empty store", func() bool { _, ok := metric(t, reader, "cqrskit.projection.lag"); return ok })
	// One append: a projection that picked up the first of five separate
	// appends would hold SQLite's write lock in its blocked Apply, and the
	// next append would wait out the busy timeout.
	var evs []event.Event
	for i := range 5 {
		evs = append(evs, event.Event{StreamType: "thing", Type: "thing.happened", Data: fmt.Appendf(nil, `{"i":%d}`, i)})
	}
	if _, err := store.Append(ctx, "thing-1", event.Any, evs); err != nil {
		t.Fatal(err)
	}
	if v := lag(); v != 5 {
		t.Fatalf("lag %d with 5 events waiting, want 5", v)
	}
	close(release)
	waitFor(t, "the lag to fall to 0", func() bool { return lag() == 0 })
	if v, _ := metric(t, reader, "cqrskit.projection.events.applied"); v != 5 {
		t.Errorf("events.applied %d, want 5", v)
	}
	var batches, events int64
	for _, s := range spans.GetSpans() {
		if s.Name != "projection.batch" {
			continue
		}
		batches++
		for _, a := range s.Attributes {
			if a.Key == "cqrskit.events.applied" {
				events += a.Value.AsInt64()
			}
		}
	}
	if batches < 2 || events != 5 {
		t.Errorf("%d projection.batch spans applying %d events; want 2 or more batches (size 3) applying 5", batches, events)
	}
}
