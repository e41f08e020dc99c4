package httpapi_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for an unreachable server

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/sample/app"
	"github.com/cqrskit/cqrskit/sample/domain"
	"github.com/cqrskit/cqrskit/sample/infra/httpapi"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// syncBuffer is a log sink safe for the handler's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// bundle is a migrated SQLite event store with the sample's service.
type bundle struct {
	store *sqlite.Store
	svc   *app.Service
}

func setup(tb testing.TB) bundle {
	tb.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "events.db"), sqlite.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := app.Migrate(ctx, store.DB(), app.SQLite, nil); err != nil {
		tb.Fatal(err)
	}
	svc, err := app.NewService(app.Config{Store: store, Snapshots: store, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	return bundle{store: store, svc: svc}
}

type apiBundle struct {
	bundle
	h   http.Handler
	log *syncBuffer
}

// setupAPI is setup plus the HTTP API over it; hc's zero fields are
// filled in (Stats may be set to point the stats at another database).
func setupAPI(t *testing.T, hc httpapi.HandlerConfig) apiBundle {
	t.Helper()
	return setupAPIOn(t, setup(t), hc)
}

// setupAPIOn is setupAPI on b.
func setupAPIOn(t *testing.T, b bundle, hc httpapi.HandlerConfig) apiBundle {
	t.Helper()
	logs := &syncBuffer{}
	db, reg := b.store.DB(), b.svc.Registry()
	hc.Service = b.svc
	hc.Products = app.NewProducts(db, reg, b.store)
	hc.Alerts = app.NewAlerts(db, reg, 5)
	if hc.Stats == nil {
		hc.Stats = app.NewStats(db, reg)
	}
	hc.Logger = slog.New(slog.NewTextHandler(logs, nil))
	h, err := httpapi.NewHandler(hc)
	if err != nil {
		t.Fatal(err)
	}
	return apiBundle{bundle: b, h: h, log: logs}
}

// call sends a request with a JSON body (none when body is "").
func (a apiBundle) call(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	a.h.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes()
}

// wantError checks a response is status with exactly the error body want.
func wantError(t *testing.T, status int, data []byte, wantStatus int, want httpapi.ErrorBody) {
	t.Helper()
	var got httpapi.ErrorBody
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("status %d, body %q: %v", status, data, err)
	}
	if status != wantStatus || got != want {
		t.Fatalf("got %d %+v, want %d %+v", status, got, wantStatus, want)
	}
}

func (a apiBundle) create(t *testing.T, sku string) string {
	t.Helper()
	id, _, err := a.svc.Create(context.Background(), app.NewProduct{Name: "Cup", SKU: sku, PriceCents: 100, Stock: 3})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestHTTPErrorTexts: each error says what is wrong once, in the API's
// words, not the store's.
func TestHTTPErrorTexts(t *testing.T) {
	a := setupAPI(t, httpapi.HandlerConfig{})
	missing := event.NewID().String()
	id := a.create(t, "CUP-1")
	gone := a.create(t, "CUP-2")
	if code, data := a.call(t, "DELETE", "/products/"+gone, ""); code != http.StatusOK {
		t.Fatalf("discontinue: %d %s", code, data)
	}

	tests := []struct {
		name, method, path, body string
		status                   int
		want                     httpapi.ErrorBody
	}{
		{"read model: no such product", "GET", "/products/" + missing, "", 404,
			httpapi.ErrorBody{Error: "product " + missing + " not found"}},
		{"command: no such product", "POST", "/products/" + missing + "/rename", `{"name":"x"}`, 404,
			httpapi.ErrorBody{Error: "product " + missing + " not found"}},
		{"history: no such product", "GET", "/products/" + missing + "/history", "", 404,
			httpapi.ErrorBody{Error: "product " + missing + " not found"}},
		{"at_version: no such product", "GET", "/products/" + missing + "?at_version=1", "", 404,
			httpapi.ErrorBody{Error: "product " + missing + " not found"}},
		{"not an ID", "GET", "/products/cup-1", "", 404,
			httpapi.ErrorBody{Error: `product "cup-1" not found: product IDs are UUIDs`}},
		{"at_version beyond the stream", "GET", "/products/" + id + "?at_version=4", "", 404,
			httpapi.ErrorBody{Error: fmt.Sprintf("product %s has no version 4: it is at version 1", id), Field: "at_version"}},
		{"min_version beyond the stream", "GET", "/products/" + id + "?min_version=9", "", 404,
			httpapi.ErrorBody{Error: fmt.Sprintf("product %s has no version 9: it is at version 1", id), Field: "min_version"}},
		{"discontinued", "POST", "/products/" + gone + "/price", `{"price_cents":5}`, 409,
			httpapi.ErrorBody{Error: "product " + gone + " is discontinued and accepts no command"}},
		{"insufficient stock", "POST", "/products/" + id + "/stock", `{"delta":-4}`, 409,
			httpapi.ErrorBody{Error: "adjust stock 3 by -4: insufficient stock: stock would become -1", Field: "delta"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, data := a.call(t, tt.method, tt.path, tt.body)
			wantError(t, code, data, tt.status, tt.want)
		})
	}
	t.Run("If-Match on another version", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/products/"+id+"/rename", strings.NewReader(`{"name":"Mug"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("If-Match", `"7"`)
		w := httptest.NewRecorder()
		a.h.ServeHTTP(w, req)
		wantError(t, w.Code, w.Body.Bytes(), 412,
			httpapi.ErrorBody{Error: fmt.Sprintf("product %s is at version 1, not 7", id), Field: "If-Match"})
	})
}

// TestHTTPDatabaseErrorsHideInternals: a database the API cannot use is
// answered with a generic text; the detail (the server's address, the
// driver's wording) goes to the log only.
func TestHTTPDatabaseErrorsHideInternals(t *testing.T) {
	t.Run("closed database", func(t *testing.T) {
		a := setupAPI(t, httpapi.HandlerConfig{})
		id := a.create(t, "CUP-1")
		a.store.DB().Close()
		code, data := a.call(t, "GET", "/products/"+id, "")
		wantError(t, code, data, 500, httpapi.ErrorBody{Error: "internal error; see the server log"})
		if !strings.Contains(a.log.String(), "database is closed") {
			t.Errorf("the log does not have the cause:\n%s", a.log.String())
		}
	})
	t.Run("unreachable server", func(t *testing.T) {
		// Port 1 on the loopback: nothing listens, the dial is refused at once.
		const addr = "127.0.0.1:1"
		db, err := sql.Open("pgx", "postgres://postgres@"+addr+"/none?connect_timeout=5")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		a := setupAPI(t, httpapi.HandlerConfig{Stats: app.NewStats(db, domain.NewRegistry())})
		code, data := a.call(t, "GET", "/stats", "")
		wantError(t, code, data, 503, httpapi.ErrorBody{Error: "the database is unavailable; retry later"})
		if !strings.Contains(a.log.String(), addr) {
			t.Errorf("the log does not name the address:\n%s", a.log.String())
		}
	})
}

// TestReadyzHidesInternals: /readyz shows why in a phrase and logs the
// detail.
func TestReadyzHidesInternals(t *testing.T) {
	detail := errors.New("dial tcp 10.1.2.3:5432: connect: connection refused")
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&app.NotReadyError{Reason: "database unreachable", Err: detail}, "database unreachable"},
		{fmt.Errorf("ping: %w", detail), "see the server log"},
	} {
		logs := &syncBuffer{}
		h, err := httpapi.NewHandler(httpapi.HandlerConfig{Ready: func(context.Context) error { return tt.err },
			Logger: slog.New(slog.NewTextHandler(logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
		var got map[string]string
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 503 ||
			len(got) != 2 || got["status"] != "not ready" || got["error"] != tt.want {
			t.Errorf("%v: got %d %s, want 503 with error %q", tt.err, w.Code, w.Body.Bytes(), tt.want)
		}
		if !strings.Contains(logs.String(), "10.1.2.3:5432") {
			t.Errorf("%v: the log does not have the detail:\n%s", tt.err, logs.String())
		}
	}
}

// TestSKUUniqueIgnoringCase: "cup-esp" after "CUP-ESP" is a 409 on sku that
// says who holds it; the first product keeps its SKU as given.
func TestSKUUniqueIgnoringCase(t *testing.T) {
	a := setupAPI(t, httpapi.HandlerConfig{})
	code, data := a.call(t, "POST", "/products", `{"name":"Espresso cup","sku":"CUP-ESP","price_cents":450,"stock":3}`)
	var cr httpapi.CommandResult
	if err := json.Unmarshal(data, &cr); code != http.StatusCreated || err != nil {
		t.Fatalf("create CUP-ESP: %d %s", code, data)
	}
	for _, sku := range []string{"cup-esp", "Cup-Esp", "CUP-ESP"} {
		code, data = a.call(t, "POST", "/products", `{"name":"Other cup","sku":"`+sku+`","price_cents":450,"stock":3}`)
		wantError(t, code, data, http.StatusConflict, httpapi.ErrorBody{Field: "sku",
			Error: fmt.Sprintf("SKU %q is taken by product %s (SKUs are unique regardless of case)", sku, cr.ID)})
	}
	p, err := a.svc.Product(context.Background(), cr.ID, 0)
	if err != nil || p.SKU != "CUP-ESP" {
		t.Fatalf("first product's SKU = %q, %v; want CUP-ESP", p.SKU, err)
	}
}
