package infra

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/cqrskit/cqrskit/sample/app"
)

// ServiceName is the OpenTelemetry service.name of the sample, unless
// OTEL_SERVICE_NAME says otherwise.
const ServiceName = "cqrskit-sample"

// The standard OpenTelemetry variables that turn OTLP export on. The
// exporters read them (and the other OTEL_EXPORTER_OTLP_* variables)
// themselves.
const (
	envOTLPEndpoint        = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envOTLPTracesEndpoint  = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envOTLPMetricsEndpoint = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
)

// telemetry is the process's OpenTelemetry SDK: a tracer provider and a
// meter provider, handed to every framework component, a Prometheus
// registry behind GET /metrics, and OTLP export over HTTP when the
// standard environment asks for it.
type telemetry struct {
	tp       *sdktrace.TracerProvider
	mp       *sdkmetric.MeterProvider
	metrics  http.Handler
	describe string
}

// newTelemetry sets up the SDK for cfg's role. Spans also go to
// cfg.SpanExporter when set.
func newTelemetry(ctx context.Context, cfg Config) (*telemetry, error) {
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(
			attribute.String("service.name", ServiceName),
			attribute.String("cqrskit.role", string(cfg.Role)),
		),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	prom, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(prom)}
	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	exporting := cfg.SpanExporter != nil
	if exporting {
		topts = append(topts, sdktrace.WithSyncer(cfg.SpanExporter))
	}
	describe := "/metrics"
	var stop []func(context.Context) error // exporters made so far, if a later one fails
	fail := func(err error) (*telemetry, error) {
		for _, f := range stop {
			_ = f(ctx)
		}
		return nil, err
	}
	otlp := func(specific string) bool { return os.Getenv(envOTLPEndpoint) != "" || os.Getenv(specific) != "" }
	if otlp(envOTLPTracesEndpoint) {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return fail(fmt.Errorf("telemetry: OTLP trace exporter: %w", err))
		}
		stop = append(stop, exp.Shutdown)
		topts = append(topts, sdktrace.WithBatcher(exp))
		exporting = true
		describe += ", OTLP traces"
	}
	if otlp(envOTLPMetricsEndpoint) {
		exp, err := otlpmetrichttp.New(ctx)
		if err != nil {
			return fail(fmt.Errorf("telemetry: OTLP metric exporter: %w", err))
		}
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
		describe += ", OTLP metrics"
	}
	if !exporting {
		// Nothing exports spans: record none, but still give each request
		// a trace ID that travels with its events (and their logs).
		topts = append(topts, sdktrace.WithSampler(sdktrace.NeverSample()))
	}
	return &telemetry{
		tp:       sdktrace.NewTracerProvider(topts...),
		mp:       sdkmetric.NewMeterProvider(mopts...),
		metrics:  promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		describe: describe,
	}, nil
}

// shutdown flushes what is buffered (OTLP batches, a last metric export)
// and stops the providers.
func (t *telemetry) shutdown(ctx context.Context) error {
	err := errors.Join(t.tp.Shutdown(ctx), t.mp.Shutdown(ctx))
	if err != nil {
		return fmt.Errorf("shut down telemetry: %w", err)
	}
	return nil
}

// handler serves GET /metrics and passes every other request to next in a
// server span (continuing the caller's W3C trace context) with the OTel
// HTTP server metrics. Health checks are not traced.
func (t *telemetry) handler(next http.Handler) http.Handler {
	traced := otelhttp.NewHandler(routed(next), "http.server",
		otelhttp.WithTracerProvider(t.tp),
		otelhttp.WithMeterProvider(t.mp),
		otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})),
		otelhttp.WithFilter(func(r *http.Request) bool { return r.URL.Path != "/healthz" && r.URL.Path != "/readyz" }),
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			traced.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		t.metrics.ServeHTTP(w, r)
	})
}

// routed names the request's route after next has answered it, so that
// the server span and the HTTP metrics say "POST /products/{id}/rename"
// (otelhttp reads Request.Pattern when the handler returns). The API's
// own router is out of reach behind its middleware, so the route is the
// path with product IDs replaced by {id}. Requests that matched no route
// (404, 405, redirects) keep no route, so scanners cannot blow up the
// metrics' cardinality.
func routed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		switch {
		case sw.status == http.StatusNotFound, sw.status == http.StatusMethodNotAllowed,
			sw.status >= 300 && sw.status < 400:
		default:
			r.Pattern = route(r.URL.Path)
		}
	})
}

// route is path with each segment that is a product ID replaced by {id}.
func route(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if _, err := app.ParseID(s); err == nil {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}

// statusWriter remembers the response status.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(status int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = status, true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
