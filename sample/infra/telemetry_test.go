package infra_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cqrskit/cqrskit/sample/domain"
	"github.com/cqrskit/cqrskit/sample/infra"
	"github.com/cqrskit/cqrskit/sample/infra/httpapi"
)

// A command's trace runs from the caller's span through the HTTP server,
// the append, the relay and the broker (the in-process NATS server) to
// both consumers; /metrics shows the framework's metrics.
func TestTelemetry(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewInMemoryExporter()
	cfg := embedded(t)
	cfg.SpanExporter = spans
	s := start(t, cfg)

	// The caller's span, as a traced HTTP client would send it.
	const traceID, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	var created httpapi.CommandResult
	s.do(t, "POST", "/products", map[string]any{"name": "Lamp", "sku": newSKU(), "price_cents": 2500, "stock": 3},
		"traceparent", "00-"+traceID+"-"+callerSpan+"-01").want(t, http.StatusCreated).decode(t, &created)
	s.do(t, "GET", "/products/"+created.ID+"?min_version=1", nil).want(t, http.StatusOK)

	var inTrace []tracetest.SpanStub
	eventually(t, 10*time.Second, func() string {
		inTrace = inTrace[:0]
		handled := 0
		for _, sp := range spans.GetSpans() {
			if sp.SpanContext.TraceID().String() == traceID {
				inTrace = append(inTrace, sp)
				if sp.Name == "handle "+domain.TypeCreated {
					handled++
				}
			}
		}
		if handled < 2 {
			return "both consumers' spans in the command's trace"
		}
		return ""
	})
	one := func(name string) tracetest.SpanStub {
		t.Helper()
		var found []tracetest.SpanStub
		for _, sp := range inTrace {
			if sp.Name == name {
				found = append(found, sp)
			}
		}
		if len(found) != 1 {
			t.Fatalf("%d spans %q in the trace, want 1; trace: %v", len(found), name, spanNames(inTrace))
		}
		return found[0]
	}
	server, save, appendSpan, publish := one("POST /products"), one("es.SaveTx"), one("es.Append"), one("publish "+domain.StreamType)
	if server.SpanKind != trace.SpanKindServer || server.Parent.SpanID().String() != callerSpan {
		t.Errorf("server span: kind %s, parent %s; want a server span under the caller's %s", server.SpanKind, server.Parent.SpanID(), callerSpan)
	}
	parentOf := func(child, parent tracetest.SpanStub) {
		t.Helper()
		if child.Parent.SpanID() != parent.SpanContext.SpanID() {
			t.Errorf("%q has parent %s, want %q %s", child.Name, child.Parent.SpanID(), parent.Name, parent.SpanContext.SpanID())
		}
	}
	parentOf(save, server)
	parentOf(appendSpan, save)
	parentOf(publish, appendSpan)
	for _, sp := range inTrace {
		if sp.Name == "handle "+domain.TypeCreated {
			parentOf(sp, publish)
		}
	}

	// Routes are named with their IDs left out; unknown paths get no route.
	s.do(t, "POST", "/products/"+created.ID+"/rename", map[string]any{"name": "Desk lamp"}).want(t, http.StatusOK)
	s.do(t, "GET", "/no/such/"+created.ID, nil).want(t, http.StatusNotFound)
	eventually(t, 10*time.Second, func() string {
		byName := map[string]tracetest.SpanStub{}
		for _, sp := range spans.GetSpans() {
			byName[sp.Name] = sp
		}
		rename, update, unknown := byName["POST /products/{id}/rename"], byName["es.Update"], byName["GET"]
		switch {
		case !rename.SpanContext.IsValid() || !update.SpanContext.IsValid() || !unknown.SpanContext.IsValid():
			return "spans POST /products/{id}/rename, es.Update and GET (the unknown path)"
		case update.Parent.SpanID() != rename.SpanContext.SpanID():
			return "es.Update under the rename's server span"
		}
		return ""
	})

	// The read model is up to date, so the stats projection has run.
	eventually(t, 10*time.Second, func() string {
		if strings.Contains(string(s.do(t, "GET", "/metrics", nil).Body), "cqrskit_projection_events_applied_total") {
			return ""
		}
		return "the projection's counter on /metrics"
	})
	r := s.do(t, "GET", "/metrics", nil).want(t, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("/metrics Content-Type %q, want Prometheus text", ct)
	}
	body := string(r.Body)
	for _, name := range []string{
		"cqrskit_es_appends_total", "cqrskit_es_append_duration_seconds_bucket", "cqrskit_es_events_appended_total",
		"cqrskit_outbox_published_total", "cqrskit_outbox_backlog", "cqrskit_outbox_oldest_age_seconds", "cqrskit_outbox_relay_active",
		`cqrskit_handler_processed_total{cqrskit_handler="sample.products",cqrskit_outcome="applied"`,
		"cqrskit_projection_events_applied_total", `cqrskit_projection_lag{cqrskit_projection="sample.stats"`,
		`http_server_request_duration_seconds_bucket{http_request_method="POST",http_response_status_code="201",http_route="/products"`,
		"go_goroutines",
	} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
	s.do(t, "POST", "/metrics", nil).want(t, http.StatusMethodNotAllowed)
}

func spanNames(spans []tracetest.SpanStub) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	return out
}

// With OTEL_EXPORTER_OTLP_ENDPOINT set, traces and metrics go to the
// collector over OTLP/HTTP; Close flushes them.
func TestOTLPExport(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got[r.Method+" "+r.URL.Path]++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")

	ctx := t.Context()
	a, err := infra.Start(ctx, embedded(t))
	if err != nil {
		t.Fatal(err)
	}
	if d := a.Describe(); !strings.Contains(d, "OTLP traces") || !strings.Contains(d, "OTLP metrics") {
		t.Errorf("Describe() = %q; want OTLP traces and metrics named", d)
	}
	rec, req := httptest.NewRecorder(), httptest.NewRequestWithContext(ctx, "POST", "/products",
		strings.NewReader(`{"name":"Fan","sku":"`+newSKU()+`","price_cents":1500,"stock":2}`))
	req.Header.Set("Content-Type", "application/json")
	a.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got["POST /v1/traces"] == 0 || got["POST /v1/metrics"] == 0 {
		t.Errorf("the collector received %v; want POST /v1/traces and POST /v1/metrics", got)
	}
}
