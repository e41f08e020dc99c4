package outbox_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cqrskit/cqrskit/messagebus"
	busmem "github.com/cqrskit/cqrskit/messagebus/memory"
	"github.com/cqrskit/cqrskit/outbox"
)

// gate holds every Publish until it opens.
type gate struct {
	outbox.Publisher
	open chan struct{}
}

func (g gate) Publish(ctx context.Context, msgs ...messagebus.Message) error {
	select {
	case <-g.open:
		return g.Publisher.Publish(ctx, msgs...)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// metricsOf collects r and returns each metric's points: the value per
// attribute set, keyed by the attribute set's encoding ("" without any).
func metricsOf(t *testing.T, r sdkmetric.Reader) map[string]map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			pts := map[string]float64{}
			switch d := m.Data.(type) {
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					pts[p.Attributes.Encoded(attribute.DefaultEncoder())] = float64(p.Value)
				}
			case metricdata.Gauge[float64]:
				for _, p := range d.DataPoints {
					pts[p.Attributes.Encoded(attribute.DefaultEncoder())] = p.Value
				}
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					pts[p.Attributes.Encoded(attribute.DefaultEncoder())] = float64(p.Value)
				}
			default:
				continue
			}
			out[m.Name] = pts
		}
	}
	return out
}

// The backlog gauge rises as events are appended and falls to zero once
// the relay has published them; the published counter counts them.
func TestBacklogGaugeFollowsAppendsAndRelay(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	store := sqliteStore(t)
	g := gate{Publisher: newBroker(t, busmem.Config{Logger: quiet}), open: make(chan struct{})}
	_, stop := startRelay(t, outbox.Config{Store: store, Publisher: g, Logger: quiet, MeterProvider: mp,
		PollInterval: 10 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})

	backlog := func() (float64, bool) {
		v, ok := metricsOf(t, reader)["cqrskit.outbox.backlog"][""]
		return v, ok
	}
	waitFor(t, "the relay to observe an empty outbox", func() bool { v, ok := backlog(); return ok && v == 0 })

	fill(t, store, 3, 2) // 6 events; the relay holds them at the gate
	if v, _ := backlog(); v != 6 {
		t.Fatalf("backlog %v after 6 appends, want 6", v)
	}
	time.Sleep(20 * time.Millisecond)
	if age := metricsOf(t, reader)["cqrskit.outbox.oldest_age"][""]; age <= 0 {
		t.Errorf("oldest_age %v with a waiting backlog, want > 0", age)
	}
	fill(t, store, 2, 2)
	if v, _ := backlog(); v != 10 {
		t.Fatalf("backlog %v after 10 appends, want 10", v)
	}
	if active := metricsOf(t, reader)["cqrskit.outbox.relay.active"][""]; active != 1 {
		t.Errorf("relay.active %v, want 1", active)
	}

	close(g.open)
	waitFor(t, "the backlog gauge to fall to 0", func() bool { v, _ := backlog(); return v == 0 })
	m := metricsOf(t, reader)
	if v := m["cqrskit.outbox.oldest_age"][""]; v != 0 {
		t.Errorf("oldest_age %v with an empty outbox, want 0", v)
	}
	if v := m["cqrskit.outbox.published"][""]; v != 10 {
		t.Errorf("published %v, want 10", v)
	}

	// Stopped, the relay observes nothing: another process may own the
	// outbox now.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, ok := backlog(); ok {
		t.Errorf("a stopped relay still reports the backlog")
	}
}

// A broker that fails counts as publish errors, per event.
func TestRelayCountsPublishErrors(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	store := sqliteStore(t)
	fill(t, store, 2, 2)
	r, err := outbox.NewRelay(outbox.Config{Store: store, Publisher: down{}, Logger: quiet, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.DrainOnce(t.Context()); err == nil {
		t.Fatal("DrainOnce with a broker down succeeded")
	}
	errs := metricsOf(t, reader)["cqrskit.outbox.errors"]
	if v := errs["cqrskit.operation=publish"]; v != 4 {
		t.Errorf("publish errors %v (all: %v), want 4", v, errs)
	}
}

type down struct{}

func (down) Publish(context.Context, ...messagebus.Message) error {
	return errors.New("broker down")
}
