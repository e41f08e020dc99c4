package httpapi

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/sample/app"
	"github.com/cqrskit/cqrskit/sample/domain"
)

// HandlerConfig configures the HTTP API.
type HandlerConfig struct {
	// Service runs commands and reads the event store. Nil serves only
	// /healthz and /readyz, for processes that run no API (the relay and
	// worker roles).
	Service *app.Service
	// Products, Alerts and Stats are the read models. Required with
	// Service.
	Products *app.Products
	Alerts   *app.Alerts
	Stats    *app.Stats
	// RebuildStats rebuilds the stats projection from the event store, for
	// POST /stats/rebuild. Nil answers that route with 501.
	RebuildStats func(ctx context.Context) error
	// Ready reports whether the process can serve, for /readyz. Nil is
	// always ready. /readyz shows the Reason of a *NotReadyError and logs
	// the rest.
	Ready func(ctx context.Context) error
	// MaxBodyBytes limits request bodies. Defaults to 64 KiB.
	MaxBodyBytes int64
	// ReadYourWritesTimeout bounds a GET with ?min_version. Defaults to 5s.
	ReadYourWritesTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Pagination limits of the list endpoints.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
	MaxHistoryPage  = 1000
)

type api struct {
	cfg HandlerConfig
	log *slog.Logger
}

// NewHandler returns the HTTP API:
//
//	POST   /products                   create          201 {"id","version"}, Location
//	POST   /products/{id}/rename       {"name"}        200 {"id","version"}
//	POST   /products/{id}/price        {"price_cents"} 200 {"id","version"}
//	POST   /products/{id}/stock        {"delta"}       200 {"id","version"}
//	DELETE /products/{id}              discontinue     200 {"id","version"}
//	GET    /products/{id}              read model; ?min_version=N waits for N;
//	                                   ?at_version=N rebuilds version N from the store
//	GET    /products?limit=&after=     read model, in ID order
//	GET    /products/{id}/history      the stored events; ?after=&limit=
//	GET    /alerts?limit=&after=       low-stock alerts
//	GET    /stats                      stats projection
//	POST   /stats/rebuild              rebuild it from the event store
//	GET    /healthz, /readyz
//
// Commands take If-Match: <version> to run only on that version (412
// otherwise). Errors are {"error","field"}.
func NewHandler(cfg HandlerConfig) (http.Handler, error) {
	if cfg.Service != nil && (cfg.Products == nil || cfg.Alerts == nil || cfg.Stats == nil) {
		return nil, errors.New("httpapi: HandlerConfig: Products, Alerts and Stats are required with Service")
	}
	if cfg.MaxBodyBytes < 0 || cfg.ReadYourWritesTimeout < 0 {
		return nil, errors.New("httpapi: HandlerConfig: MaxBodyBytes and ReadYourWritesTimeout must not be negative")
	}
	cfg.MaxBodyBytes = cmp.Or(cfg.MaxBodyBytes, 64<<10)
	cfg.ReadYourWritesTimeout = cmp.Or(cfg.ReadYourWritesTimeout, 5*time.Second)
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	h := &api{cfg: cfg, log: cfg.Logger}

	mux := http.NewServeMux()
	route := func(path string, methods map[string]http.HandlerFunc) {
		allow := ""
		for _, m := range []string{"GET", "POST", "DELETE"} {
			if fn, ok := methods[m]; ok {
				mux.HandleFunc(m+" "+path, fn)
				allow += ", " + m
			}
		}
		allow = allow[2:]
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "", fmt.Sprintf("method %s not allowed on %s; allowed: %s", r.Method, path, allow))
		})
	}
	route("/healthz", map[string]http.HandlerFunc{"GET": h.healthz})
	route("/readyz", map[string]http.HandlerFunc{"GET": h.readyz})
	if cfg.Service != nil {
		route("/products", map[string]http.HandlerFunc{"GET": h.list, "POST": h.create})
		route("/products/{id}", map[string]http.HandlerFunc{"GET": h.get, "DELETE": h.discontinue})
		route("/products/{id}/rename", map[string]http.HandlerFunc{"POST": h.rename})
		route("/products/{id}/price", map[string]http.HandlerFunc{"POST": h.price})
		route("/products/{id}/stock", map[string]http.HandlerFunc{"POST": h.stock})
		route("/products/{id}/history", map[string]http.HandlerFunc{"GET": h.history})
		route("/alerts", map[string]http.HandlerFunc{"GET": h.alerts})
		route("/stats", map[string]http.HandlerFunc{"GET": h.stats})
		route("/stats/rebuild", map[string]http.HandlerFunc{"POST": h.rebuildStats})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "", fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	})
	return logRequests(cfg.Logger, withMetadata(mux)), nil
}

// Headers carrying request identity into event metadata.
const (
	HeaderCorrelationID = "X-Correlation-Id"
	HeaderRequestID     = "X-Request-Id"
)

// withMetadata puts event metadata on the request's context: the caller's
// correlation ID (or a new one, echoed in the response) and the request
// ID as causation ID, so every event a request causes can be traced back.
func withMetadata(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		corr := headerToken(r, HeaderCorrelationID)
		req := headerToken(r, HeaderRequestID)
		if req == "" {
			req = uuid.NewString()
		}
		corr = cmp.Or(corr, req)
		w.Header().Set(HeaderCorrelationID, corr)
		ctx := es.WithMetadata(r.Context(), event.Metadata{CorrelationID: corr, CausationID: req})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// headerToken returns a header value usable as an ID: at most 128
// printable ASCII characters without spaces; anything else is ignored.
func headerToken(r *http.Request, name string) string {
	v := r.Header.Get(name)
	if len(v) > 128 {
		return ""
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] >= 0x7f {
			return ""
		}
	}
	return v
}

// withCommand adds the command's name to the events' metadata.
func withCommand(ctx context.Context, name string) context.Context {
	md := es.MetadataFrom(ctx)
	if md.Extra == nil {
		md.Extra = map[string]string{}
	}
	md.Extra["command"] = name
	return es.WithMetadata(ctx, md)
}

// CommandResult is the answer to a command.
type CommandResult struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
}

func (h *api) create(w http.ResponseWriter, r *http.Request) {
	var (
		np           app.NewProduct
		price, stock int64
	)
	if err := decodeBody(w, r, h.cfg.MaxBodyBytes,
		field{"name", &np.Name, true}, field{"sku", &np.SKU, true},
		field{"price_cents", &price, true}, field{"stock", &stock, true}); err != nil {
		h.fail(w, r, failure{err: err})
		return
	}
	np.PriceCents, np.Stock = price, stock
	id, version, err := h.cfg.Service.Create(withCommand(r.Context(), "create"), np)
	if err != nil {
		h.fail(w, r, failure{err: err})
		return
	}
	w.Header().Set("Location", "/products/"+id)
	w.Header().Set("ETag", etag(version))
	writeJSON(w, http.StatusCreated, CommandResult{ID: id, Version: version})
}

func (h *api) rename(w http.ResponseWriter, r *http.Request) {
	var name string
	h.command(w, r, "rename", []field{{"name", &name, true}}, func(p *domain.Product) error { return p.Rename(name) })
}

func (h *api) price(w http.ResponseWriter, r *http.Request) {
	var price int64
	h.command(w, r, "change_price", []field{{"price_cents", &price, true}}, func(p *domain.Product) error { return p.ChangePrice(price) })
}

func (h *api) stock(w http.ResponseWriter, r *http.Request) {
	var delta int64
	h.command(w, r, "adjust_stock", []field{{"delta", &delta, true}}, func(p *domain.Product) error { return p.AdjustStock(delta) })
}

func (h *api) discontinue(w http.ResponseWriter, r *http.Request) {
	h.command(w, r, "discontinue", nil, func(p *domain.Product) error { return p.Discontinue() })
}

// command runs one command on the product named in the path. A nil
// fields list means the command has no body.
func (h *api) command(w http.ResponseWriter, r *http.Request, name string, fields []field, fn func(*domain.Product) error) {
	id := r.PathValue("id")
	if _, err := app.ParseID(id); err != nil {
		h.fail(w, r, failure{err: err})
		return
	}
	match, err := ifMatch(r)
	if err != nil {
		h.fail(w, r, failure{err: err})
		return
	}
	if fields != nil {
		if err := decodeBody(w, r, h.cfg.MaxBodyBytes, fields...); err != nil {
			h.fail(w, r, failure{err: err})
			return
		}
	}
	id, _ = app.ParseID(id)
	version, err := h.cfg.Service.Execute(withCommand(r.Context(), name), id, match, fn)
	if err != nil {
		h.fail(w, r, failure{err: err})
		return
	}
	w.Header().Set("ETag", etag(version))
	writeJSON(w, http.StatusOK, CommandResult{ID: id, Version: version})
}

func (h *api) get(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, err := app.ParseID(r.PathValue("id"))
	if err != nil {
		h.fail(w, r, failure{err: err})
		return
	}
	q := r.URL.Query()
	if q.Has("at_version") && q.Has("min_version") {
		h.fail(w, r, failure{err: badRequest("at_version", "at_version and min_version cannot be combined")})
		return
	}
	at, err := queryInt(r, "at_version", 0, 1, 1<<62)
	if err != nil {
		h.fail(w, r, failure{err: err})
		return
	}
	minVersion, err := queryInt(r, "min_version", 0, 1, 1<<62)
	if err != nil {
		h.fail(w, r, failure{err: err})
		return
	}
	var view app.ProductView
	switch {
	case at > 0:
		p, err := h.cfg.Service.Product(ctx, id, at)
		if err != nil {
			h.fail(w, r, failure{err: err, versionField: "at_version"})
			return
		}
		view = app.ViewOf(p)
	case minVersion > 0:
		view, err = h.cfg.Products.Get(ctx, id)
		if err == nil && view.Version >= minVersion {
			break
		}
		if err != nil && !errors.Is(err, app.ErrNotFound) {
			h.fail(w, r, failure{err: err})
			return
		}
		// Not there yet. Waiting only makes sense for a version that exists.
		if err := h.cfg.Service.CheckVersion(ctx, id, minVersion); err != nil {
			h.fail(w, r, failure{err: err, versionField: "min_version"})
			return
		}
		if view, err = h.cfg.Products.WaitFor(ctx, id, minVersion, h.cfg.ReadYourWritesTimeout); err != nil {
			h.fail(w, r, failure{err: err, versionField: "min_version"})
			return
		}
	default:
		if view, err = h.cfg.Products.Get(ctx, id); err != nil {
			h.fail(w, r, failure{err: err})
			return
		}
	}
	w.Header().Set("ETag", etag(view.Version))
	writeJSON(w, http.StatusOK, view)
}

// ProductList is a page of products; Next is the after= of the next page,
// empty on the last.
type ProductList struct {
	Products []app.ProductView `json:"products"`
	Next     string            `json:"next,omitempty"`
}

func (h *api) list(w http.ResponseWriter, r *http.Request) {
	limit, after, err := pageParams(r)
	if err != nil {
		h.fail(w, r, failure{err: err})
		return
	}
	items, err := h.cfg.Products.List(r.Context(), after, limit+1)
	if err != nil {
		h.fail(w, r, failure{err: err})
		return
	}
	page := ProductList{Products: items}
	if len(items) > limit {
		page.Products = items[:limit]
		page.Next = items[limit-1].ID
	}
	writeJSON(w, http.StatusOK, page)
}

// pageParams reads limit and after (an ID) for the list endpoints.
func pageParams(r *http.Request) (int, string, error) {
	limit, err := queryInt(r, "limit", DefaultPageSize, 1, MaxPageSize)
	if err != nil {
		return 0, "", err
	}
	after := r.URL.Query().Get("after")
	if after != "" {
		if after, err = app.ParseID(after); err != nil {
			return 0, "", badRequest("after", fmt.Sprintf("after=%q: want an ID from a previous page", r.URL.Query().Get("after")))
		}
	}
	return int(limit), after, nil
}

// HistoryEvent is one stored event as /history shows it.
type HistoryEvent struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	Version       int64           `json:"version"`
	SchemaVersion int             `json:"schema_version"`
	RecordedAt    time.Time       `json:"recorded_at"`
	Data          json.RawMessage `json:"data"`
	Metadata      event.Metadata  `json:"metadata"`
}

// History is a page of a product's events; NextAfter is the after= of the
// next page, 0 on the last.
type History struct {
	ID        string         `json:"id"`
	Events    []HistoryEvent `json:"events"`
	NextAfter int64          `json:"next_after,omitempty"`
}

func (h *api) history(w http.ResponseWriter, r *http.Request) {
	id, err := app.ParseID(r.PathValue("id"))
	if err != nil {
		h.fail(w, r, failure{err: err})
		return
	}
	limit, err := queryInt(r, "limit", MaxHistoryPage, 1, MaxHistoryPage)
	if err != nil {
		h.fail(w, r, failure{err: err})
		return
	}
	after, err := queryInt(r, "after", 0, 0, 1<<62)
	if err != nil {
		h.fail(w, r, failure{err: err})
		return
	}
	events, more, err := h.cfg.Service.History(r.Context(), id, after, int(limit))
	if err != nil {
		h.fail(w, r, failure{err: err})
		return
	}
	out := History{ID: id, Events: make([]HistoryEvent, len(events))}
	for i, e := range events {
		data := json.RawMessage(e.Data)
		if !json.Valid(data) { // a non-JSON codec: show the bytes as a string
			data, _ = json.Marshal(e.Data)
		}
		out.Events[i] = HistoryEvent{ID: e.ID.String(), Type: e.Type, Version: e.Version, SchemaVersion: e.SchemaVersion,
			RecordedAt: e.RecordedAt, Data: data, Metadata: e.Metadata}
	}
	if more {
		out.NextAfter = events[len(events)-1].Version
	}
	writeJSON(w, http.StatusOK, out)
}

// AlertList is a page of alerts; Next is the after= of the next page.
type AlertList struct {
	Threshold int64       `json:"threshold"`
	Alerts    []app.Alert `json:"alerts"`
	Next      string      `json:"next,omitempty"`
}

func (h *api) alerts(w http.ResponseWriter, r *http.Request) {
	limit, after, err := pageParams(r)
	if err != nil {
		h.fail(w, r, failure{err: err})
		return
	}
	items, err := h.cfg.Alerts.List(r.Context(), after, limit+1)
	if err != nil {
		h.fail(w, r, failure{err: err})
		return
	}
	page := AlertList{Threshold: h.cfg.Alerts.Threshold(), Alerts: items}
	if len(items) > limit {
		page.Alerts = items[:limit]
		page.Next = items[limit-1].ID
	}
	writeJSON(w, http.StatusOK, page)
}

func (h *api) stats(w http.ResponseWriter, r *http.Request) {
	v, err := h.cfg.Stats.Get(r.Context())
	if err != nil {
		h.fail(w, r, failure{err: err})
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (h *api) rebuildStats(w http.ResponseWriter, r *http.Request) {
	if h.cfg.RebuildStats == nil {
		writeError(w, http.StatusNotImplemented, "", "this process cannot rebuild the stats projection")
		return
	}
	start := time.Now()
	if err := h.cfg.RebuildStats(r.Context()); err != nil {
		h.fail(w, r, failure{err: err})
		return
	}
	v, err := h.cfg.Stats.Get(r.Context())
	if err != nil {
		h.fail(w, r, failure{err: err})
		return
	}
	writeJSON(w, http.StatusOK, struct {
		app.StatsView
		RebuiltIn string `json:"rebuilt_in"`
	}{v, time.Since(start).Round(time.Millisecond).String()})
}

func (h *api) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (h *api) readyz(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := h.cfg.Ready(ctx); err != nil {
			reason := "see the server log"
			if nr, ok := errors.AsType[*app.NotReadyError](err); ok {
				reason = nr.Reason
			}
			h.log.WarnContext(r.Context(), "not ready", "error", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": reason})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
