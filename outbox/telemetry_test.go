package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
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

// A minimal aggregate for the trace test.
type (
	ticket       struct{ es.Base }
	ticketOpened struct{ Title string }
)

func (*ticket) Apply(any) error { return nil }

// One command becomes one trace across the store, the relay, the broker
// and the consumer: command -> es.Save -> es.Append -> publish (producer)
// -> handle (consumer), each the parent of the next.
func TestTraceFollowsTheEventToItsHandler(t *testing.T) {
	ctx := t.Context()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	store := sqliteStore(t)
	reg := event.NewRegistry(nil)
	event.MustRegister[ticketOpened](reg, "ticket.opened")
	repo, err := es.NewRepository(store, reg, es.RepositoryConfig[*ticket]{
		New: func() *ticket { return &ticket{} }, StreamType: "ticket", Logger: quiet, TracerProvider: tp,
	})
	if err != nil {
		t.Fatal(err)
	}
	broker := newBroker(t, busmem.Config{Logger: quiet})
	handled := make(chan trace.SpanContext, 1)
	h, err := handler.Idempotent(handler.Config{
		Name: "tickets", Store: store, TracerProvider: tp, Logger: quiet,
		Func: func(ctx context.Context, _ *sql.Tx, e event.Event) error {
			handled <- trace.SpanContextFromContext(ctx)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := broker.Subscribe(ctx, "ticket", "tickets", h.Handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Stop(context.Background()) })

	// The command, as an API would run it.
	cmdCtx, cmd := tp.Tracer("test").Start(ctx, "command open-ticket")
	tk := &ticket{}
	tk.SetID("42")
	if err := es.Raise(tk, ticketOpened{Title: "printer on fire"}); err != nil {
		t.Fatal(err)
	}
	if err := repo.Save(cmdCtx, tk); err != nil {
		t.Fatal(err)
	}
	cmd.End()

	// The relay runs in its own context, as in another process: only the
	// event's metadata links it to the command.
	relay, err := outbox.NewRelay(outbox.Config{Store: store, Publisher: broker, Logger: quiet, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := relay.DrainOnce(context.Background()); n != 1 || err != nil {
		t.Fatalf("DrainOnce = %d, %v; want 1 event", n, err)
	}
	var inFunc trace.SpanContext
	select {
	case inFunc = <-handled:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not receive the event")
	}
	_ = sub.Stop(ctx) // the handler span has ended when Stop returns

	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans.GetSpans() {
		if _, dup := byName[s.Name]; dup {
			t.Errorf("span %q recorded twice", s.Name)
		}
		byName[s.Name] = s
	}
	get := func(name string) tracetest.SpanStub {
		t.Helper()
		s, ok := byName[name]
		if !ok {
			t.Fatalf("no span %q; got %v", name, names(byName))
		}
		return s
	}
	command, save, appendSpan := get("command open-ticket"), get("es.Save"), get("es.Append")
	publish, handle, drain := get("publish ticket"), get("handle ticket.opened"), get("outbox.drain")

	chain := []tracetest.SpanStub{command, save, appendSpan, publish, handle}
	for i, s := range chain {
		if s.SpanContext.TraceID() != command.SpanContext.TraceID() {
			t.Errorf("span %q is in trace %s, want the command's trace %s", s.Name, s.SpanContext.TraceID(), command.SpanContext.TraceID())
		}
		if i == 0 {
			continue
		}
		if parent := chain[i-1]; s.Parent.SpanID() != parent.SpanContext.SpanID() {
			t.Errorf("span %q has parent %s, want %q (%s)", s.Name, s.Parent.SpanID(), parent.Name, parent.SpanContext.SpanID())
		}
	}
	if publish.SpanKind != trace.SpanKindProducer || handle.SpanKind != trace.SpanKindConsumer {
		t.Errorf("publish is a %s span and handle a %s span; want producer and consumer", publish.SpanKind, handle.SpanKind)
	}
	if !handle.Parent.IsRemote() {
		t.Errorf("the handle span's parent is not remote: it did not come through the message headers")
	}
	if inFunc.SpanID() != handle.SpanContext.SpanID() {
		t.Errorf("the handler func's ctx carries span %s, want the handle span %s", inFunc.SpanID(), handle.SpanContext.SpanID())
	}
	// The batch is a trace of its own; each publish span links to it.
	if drain.SpanContext.TraceID() == command.SpanContext.TraceID() {
		t.Errorf("outbox.drain joined the command's trace; want a trace of its own")
	}
	linked := false
	for _, l := range publish.Links {
		linked = linked || l.SpanContext.SpanID() == drain.SpanContext.SpanID()
	}
	if !linked {
		t.Errorf("the publish span does not link to its outbox.drain batch span")
	}

	// The stored event still carries the append span's context.
	for e, err := range store.Load(ctx, "ticket-42", 1) {
		if err != nil {
			t.Fatal(err)
		}
		if want := appendSpan.SpanContext.SpanID().String(); len(e.Metadata.TraceParent) != 55 || e.Metadata.TraceParent[36:52] != want {
			t.Errorf("stored traceparent %q, want the es.Append span %s", e.Metadata.TraceParent, want)
		}
	}
}

func names(m map[string]tracetest.SpanStub) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	return out
}
