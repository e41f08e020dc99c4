package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/sample/app"
	"github.com/cqrskit/cqrskit/sample/infra/httpapi"
)

// fuzzRoutes are the API's routes; "{id}" is replaced by the fuzzed ID.
var fuzzRoutes = []struct{ method, path string }{
	{http.MethodPost, "/products"},
	{http.MethodPost, "/products/{id}/stock"},
	{http.MethodPost, "/products/{id}/price"},
	{http.MethodPost, "/products/{id}/rename"},
	{http.MethodDelete, "/products/{id}"},
	{http.MethodGet, "/products/{id}"},
	{http.MethodGet, "/products"},
	{http.MethodGet, "/products/{id}/history"},
	{http.MethodGet, "/alerts"},
	{http.MethodPut, "/products/{id}/stock"},
}

// fuzzAPI is the HTTP API over a SQLite store, with one product, made once
// per fuzzing process.
func fuzzAPI(tb testing.TB) (http.Handler, string) {
	tb.Helper()
	ctx := context.Background()
	b := setup(tb)
	store, svc, quiet := b.store, b.svc, slog.New(slog.DiscardHandler)
	db, reg := store.DB(), svc.Registry()
	h, err := httpapi.NewHandler(httpapi.HandlerConfig{Service: svc, Products: app.NewProducts(db, reg, store),
		Alerts: app.NewAlerts(db, reg, 5), Stats: app.NewStats(db, reg),
		ReadYourWritesTimeout: time.Millisecond, MaxBodyBytes: 1 << 10, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	id, _, err := svc.Create(ctx, app.NewProduct{Name: "Fuzz", SKU: "FUZZ-1", PriceCents: 100, Stock: 1 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	return h, id
}

// FuzzHTTPRequest sends arbitrary requests to the API's routes: any ID,
// query, If-Match, Content-Type and body. Whatever comes in, the answer is
// JSON with a status the API documents, and an input error is a 4xx
// naming what is wrong, never a 500 or a panic.
func FuzzHTTPRequest(f *testing.F) {
	h, id := fuzzAPI(f)
	f.Add(uint8(0), "", "", "", "application/json", `{"name":"Mug","sku":"MUG-1","price_cents":450,"stock":12}`)
	f.Add(uint8(1), id, "", "", "application/json", `{"delta":-3}`)
	f.Add(uint8(1), id, "", `"1"`, "application/json", `{"delta":1}`)
	f.Add(uint8(2), id, "", "W/\"2\"", "application/json; charset=utf-8", `{"price_cents":99999999999}`)
	f.Add(uint8(3), id, "", "*", "application/vnd.x+json", `{"name":"  "}`)
	f.Add(uint8(4), strings.ToUpper(id), "", "", "", "")
	f.Add(uint8(5), id, "at_version=1&min_version=2", "", "", "")
	f.Add(uint8(5), id, "min_version=99", "", "", "")
	f.Add(uint8(6), "", "limit=0&after=%zz", "", "", "")
	f.Add(uint8(7), id, "after=-1&limit=1001", "", "", "")
	f.Add(uint8(8), "", "limit=500&after=\x00", "", "", "")
	f.Add(uint8(1), "not-a-uuid", "", "", "text/plain", `{"delta":1}`)
	f.Add(uint8(1), id, "", "", "application/json", `{"delta":1e3}`)
	f.Add(uint8(9), id, "", "", "application/json", `{}`)
	f.Fuzz(func(t *testing.T, route uint8, pid, query, ifMatch, contentType, body string) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		req := httptest.NewRequest(rt.method, "/", strings.NewReader(body))
		req.URL.Path = strings.ReplaceAll(rt.path, "{id}", pid)
		req.URL.RawQuery = query
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		res := w.Result()
		data, _ := io.ReadAll(res.Body)

		switch res.StatusCode {
		case http.StatusOK, http.StatusCreated:
		case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
			return // the mux cleans the path ("/products/../x"): no JSON
		case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusConflict,
			http.StatusPreconditionFailed, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType,
			http.StatusServiceUnavailable:
			var eb httpapi.ErrorBody
			if err := json.Unmarshal(data, &eb); err != nil || eb.Error == "" {
				t.Fatalf("%s %s: %d with body %q: want {\"error\": ...}", rt.method, req.URL, res.StatusCode, data)
			}
			return
		default:
			t.Fatalf("%s %s (If-Match %q, Content-Type %q, body %q): status %d %q", rt.method, req.URL, ifMatch, contentType, body, res.StatusCode, data)
		}
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s: %d with Content-Type %q", rt.method, req.URL, res.StatusCode, ct)
		}
		var v map[string]any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("%s %s: %d with body %q: %v", rt.method, req.URL, res.StatusCode, data, err)
		}
		if rt.method != http.MethodGet {
			var cr httpapi.CommandResult
			if err := json.Unmarshal(data, &cr); err != nil || cr.ID == "" || cr.Version < 1 {
				t.Fatalf("%s %s: %d with %q, want {\"id\", \"version\"}", rt.method, req.URL, res.StatusCode, data)
			}
		}
	})
}
