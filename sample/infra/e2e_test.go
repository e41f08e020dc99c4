package infra_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/sample/app"
	"github.com/cqrskit/cqrskit/sample/domain"
	"github.com/cqrskit/cqrskit/sample/infra/httpapi"
)

// The end-to-end tests run the whole service over real HTTP, in both
// configurations: embedded (SQLite and an in-process NATS server) and
// production (PostgreSQL and the machine's NATS server). One service per
// configuration runs the subtests in turn; the restart comes last.

func TestEmbedded(t *testing.T) {
	t.Parallel()
	suite(t, start(t, embedded(t)))
}

func TestPostgresNATS(t *testing.T) {
	t.Parallel()
	suite(t, start(t, postgresNATS(t)))
}

func suite(t *testing.T, s *service) {
	t.Run("endpoints", func(t *testing.T) { testEndpoints(t, s) })
	t.Run("errors", func(t *testing.T) { testErrors(t, s) })
	t.Run("read your writes", func(t *testing.T) { testReadYourWrites(t, s) })
	t.Run("concurrent stock", func(t *testing.T) { testConcurrentStock(t, s) })
	t.Run("stats", func(t *testing.T) { testStats(t, s) })
	t.Run("restart mid-stream", func(t *testing.T) { testRestart(t, s) })
	t.Run("crash mid-stream", func(t *testing.T) { testCrash(t, s) })
}

func testEndpoints(t *testing.T, s *service) {
	sku := newSKU()
	r := s.do(t, "POST", "/products", map[string]any{"name": "Mug", "sku": sku, "price_cents": 900, "stock": 8},
		"X-Correlation-Id", "corr-endpoints").want(t, http.StatusCreated)
	var created httpapi.CommandResult
	r.decode(t, &created)
	id := created.ID
	if _, err := uuid.Parse(id); err != nil || created.Version != 1 {
		t.Fatalf("create answered %s", r.Body)
	}
	if loc := r.Header.Get("Location"); loc != "/products/"+id {
		t.Errorf("Location %q, want /products/%s", loc, id)
	}
	if got := r.Header.Get("X-Correlation-Id"); got != "corr-endpoints" {
		t.Errorf("X-Correlation-Id echoed as %q", got)
	}

	want := app.ProductView{ID: id, Name: "Mug", SKU: sku, PriceCents: 900, Stock: 8, Version: 1}
	if got := s.product(t, id, 1); got != want {
		t.Fatalf("GET after create = %+v, want %+v", got, want)
	}
	// The fields of the contract, no more, no less.
	var raw map[string]any
	s.do(t, "GET", "/products/"+id, nil).want(t, http.StatusOK).decode(t, &raw)
	if keys := sortedKeys(raw); !slices.Equal(keys, []string{"discontinued", "id", "name", "price_cents", "sku", "stock", "version"}) {
		t.Errorf("GET /products/{id} fields %v", keys)
	}

	if v := s.command(t, id, "rename", map[string]any{"name": "Big mug"}); v != 2 {
		t.Fatalf("rename: version %d, want 2", v)
	}
	if v := s.command(t, id, "price", map[string]any{"price_cents": 1200}, "If-Match", "2"); v != 3 {
		t.Fatalf("conditional price change: version %d, want 3", v)
	}
	r = s.do(t, "POST", "/products/"+id+"/price", map[string]any{"price_cents": 1300}, "If-Match", `"2"`)
	wantError(t, r, http.StatusPreconditionFailed, "If-Match")
	if v := s.command(t, id, "stock", map[string]any{"delta": -4}); v != 4 {
		t.Fatalf("stock: version %d, want 4", v)
	}
	want = app.ProductView{ID: id, Name: "Big mug", SKU: sku, PriceCents: 1200, Stock: 4, Version: 4}
	if got := s.product(t, id, 4); got != want {
		t.Fatalf("GET after commands = %+v, want %+v", got, want)
	}
	if etag := s.do(t, "GET", "/products/"+id, nil).Header.Get("ETag"); etag != `"4"` {
		t.Errorf("ETag %q, want \"4\"", etag)
	}

	// History: every event with its type, version, time, data and metadata.
	var h httpapi.History
	s.do(t, "GET", "/products/"+id+"/history", nil).want(t, http.StatusOK).decode(t, &h)
	types := []string{domain.TypeCreated, domain.TypeRenamed, domain.TypePriceChanged, domain.TypeStockAdjusted}
	if len(h.Events) != len(types) || h.NextAfter != 0 {
		t.Fatalf("history has %d events (next %d), want %d: %+v", len(h.Events), h.NextAfter, len(types), h)
	}
	for i, e := range h.Events {
		if e.Type != types[i] || e.Version != int64(i+1) || e.RecordedAt.IsZero() || time.Since(e.RecordedAt) > time.Hour {
			t.Errorf("history[%d] = %s v%d at %s", i, e.Type, e.Version, e.RecordedAt)
		}
	}
	var createdData domain.Created
	if err := json.Unmarshal(h.Events[0].Data, &createdData); err != nil || createdData.SKU != sku || createdData.Stock != 8 {
		t.Errorf("history[0].data = %s (%v)", h.Events[0].Data, err)
	}
	if md := h.Events[0].Metadata; md.CorrelationID != "corr-endpoints" || md.CausationID == "" || md.Extra["command"] != "create" {
		t.Errorf("history[0].metadata = %+v", md)
	}
	s.do(t, "GET", "/products/"+id+"/history?after=2&limit=1", nil).want(t, http.StatusOK).decode(t, &h)
	if len(h.Events) != 1 || h.Events[0].Version != 3 || h.NextAfter != 3 {
		t.Errorf("history page after 2, limit 1 = %+v", h)
	}

	// A past state, rebuilt from the store.
	var past app.ProductView
	s.do(t, "GET", "/products/"+id+"?at_version=2", nil).want(t, http.StatusOK).decode(t, &past)
	if want := (app.ProductView{ID: id, Name: "Big mug", SKU: sku, PriceCents: 900, Stock: 8, Version: 2}); past != want {
		t.Errorf("at_version=2 = %+v, want %+v", past, want)
	}

	// The stock fell from 8 to 4, below the threshold of 5: one alert, from
	// the second consumer.
	eventually(t, 20*time.Second, func() string {
		var al httpapi.AlertList
		s.do(t, "GET", "/alerts?limit=500", nil).want(t, http.StatusOK).decode(t, &al)
		for _, a := range al.Alerts {
			if a.ProductID == id {
				if a.Stock != 4 || a.Threshold != 5 || a.Version != 4 || a.RaisedAt.IsZero() {
					return fmt.Sprintf("alert %+v", a)
				}
				return ""
			}
		}
		return fmt.Sprintf("no alert for %s in %+v", id, al)
	})

	if v := s.version(t, "DELETE", "/products/"+id); v != 5 {
		t.Fatalf("discontinue: version %d, want 5", v)
	}
	if got := s.product(t, id, 5); !got.Discontinued {
		t.Errorf("after DELETE: %+v", got)
	}

	// Listing pages through every product in ID order.
	ids := []string{id, s.create(t, "Plate", 500, 1), s.create(t, "Bowl", 700, 2)}
	for _, id := range ids[1:] {
		s.product(t, id, 1)
	}
	var listed []string
	next := ""
	for page := 0; ; page++ {
		var l httpapi.ProductList
		s.do(t, "GET", "/products?limit=2&after="+next, nil).want(t, http.StatusOK).decode(t, &l)
		if len(l.Products) > 2 || page > 1000 {
			t.Fatalf("page of %d products with limit 2", len(l.Products))
		}
		for _, p := range l.Products {
			listed = append(listed, p.ID)
		}
		if l.Next == "" {
			break
		}
		next = l.Next
	}
	if !slices.IsSorted(listed) {
		t.Errorf("listing is not in ID order: %v", listed)
	}
	for _, id := range ids {
		if !slices.Contains(listed, id) {
			t.Errorf("product %s not listed", id)
		}
	}

	for _, path := range []string{"/healthz", "/readyz"} {
		s.do(t, "GET", path, nil).want(t, http.StatusOK)
	}
}

// version sends a command without a body and returns the new version.
func (s *service) version(t testing.TB, method, path string) int64 {
	t.Helper()
	var res httpapi.CommandResult
	s.do(t, method, path, nil).want(t, http.StatusOK).decode(t, &res)
	return res.Version
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// wantError checks an error response: its status, a JSON body with a
// message, and the field blamed.
func wantError(t testing.TB, r response, status int, field string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("status %d, want %d; body %s", r.Status, status, r.Body)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type %q", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Errorf("error body %s: %v", r.Body, err)
		return
	}
	msg, _ := body["error"].(string)
	got, hasField := body["field"].(string)
	if msg == "" || !hasField || got != field || len(body) != 2 {
		t.Errorf("error body %s, want {\"error\": ..., \"field\": %q}", r.Body, field)
	}
}

func testErrors(t *testing.T, s *service) {
	id := s.create(t, "Lamp", 2500, 2)
	gone := s.create(t, "Old lamp", 2500, 2)
	s.version(t, "DELETE", "/products/"+gone)
	var takenSKU string
	{
		var v app.ProductView
		s.do(t, "GET", fmt.Sprintf("/products/%s?min_version=1", id), nil).want(t, http.StatusOK).decode(t, &v)
		takenSKU = v.SKU
	}
	unknown := uuid.NewString()
	valid := func(extra map[string]any) map[string]any {
		m := map[string]any{"name": "n", "sku": newSKU(), "price_cents": 1, "stock": 1}
		for k, v := range extra {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	big := `{"name":"` + strings.Repeat("x", 100<<10) + `","sku":"A","price_cents":1,"stock":1}`
	tests := []struct {
		name, method, path string
		body               any
		hdr                []string
		status             int
		field              string
	}{
		{"invalid JSON", "POST", "/products", `{"name":`, nil, 400, ""},
		{"empty body", "POST", "/products", ``, nil, 400, ""},
		{"not an object", "POST", "/products", `[1, 2]`, nil, 400, ""},
		{"null body", "POST", "/products", `null`, nil, 400, ""},
		{"trailing data", "POST", "/products", `{"name":"a","sku":"B","price_cents":1,"stock":1} {}`, nil, 400, ""},
		{"unknown field", "POST", "/products", valid(map[string]any{"colour": "red"}), nil, 400, "colour"},
		{"wrong type", "POST", "/products", valid(map[string]any{"price_cents": "12"}), nil, 400, "price_cents"},
		{"fraction", "POST", "/products", valid(map[string]any{"stock": 1.5}), nil, 400, "stock"},
		{"missing field", "POST", "/products", valid(map[string]any{"sku": nil}), nil, 400, "sku"},
		{"empty name", "POST", "/products", valid(map[string]any{"name": "  "}), nil, 400, "name"},
		{"zero price", "POST", "/products", valid(map[string]any{"price_cents": 0}), nil, 400, "price_cents"},
		{"negative stock", "POST", "/products", valid(map[string]any{"stock": -1}), nil, 400, "stock"},
		{"zero price change", "POST", "/products/" + id + "/price", map[string]any{"price_cents": 0}, nil, 400, "price_cents"},
		{"zero delta", "POST", "/products/" + id + "/stock", map[string]any{"delta": 0}, nil, 400, "delta"},
		{"unknown command field", "POST", "/products/" + id + "/rename", map[string]any{"title": "x"}, nil, 400, "title"},
		{"bad If-Match", "POST", "/products/" + id + "/rename", map[string]any{"name": "x"}, []string{"If-Match", "latest"}, 400, "If-Match"},
		{"bad min_version", "GET", "/products/" + id + "?min_version=soon", nil, nil, 400, "min_version"},
		{"bad at_version", "GET", "/products/" + id + "?at_version=0", nil, nil, 400, "at_version"},
		{"both versions", "GET", "/products/" + id + "?at_version=1&min_version=1", nil, nil, 400, "at_version"},
		{"bad limit", "GET", "/products?limit=0", nil, nil, 400, "limit"},
		{"limit too large", "GET", "/products?limit=100000", nil, nil, 400, "limit"},
		{"bad after", "GET", "/products?after=zz", nil, nil, 400, "after"},
		{"bad history limit", "GET", "/products/" + id + "/history?limit=-1", nil, nil, 400, "limit"},

		{"unknown product", "GET", "/products/" + unknown, nil, nil, 404, ""},
		{"not a product ID", "GET", "/products/lamp", nil, nil, 404, ""},
		{"command on unknown product", "POST", "/products/" + unknown + "/rename", map[string]any{"name": "x"}, nil, 404, ""},
		{"discontinue unknown product", "DELETE", "/products/" + unknown, nil, nil, 404, ""},
		{"history of unknown product", "GET", "/products/" + unknown + "/history", nil, nil, 404, ""},
		{"past of unknown product", "GET", "/products/" + unknown + "?at_version=1", nil, nil, 404, ""},
		{"version not reached", "GET", "/products/" + id + "?at_version=99", nil, nil, 404, "at_version"},
		{"wait for a version never reached", "GET", "/products/" + id + "?min_version=99", nil, nil, 404, "min_version"},
		{"wait for unknown product", "GET", "/products/" + unknown + "?min_version=1", nil, nil, 404, ""},
		{"unknown route", "GET", "/nothing/here", nil, nil, 404, ""},

		{"duplicate SKU", "POST", "/products", valid(map[string]any{"sku": takenSKU}), nil, 409, "sku"},
		{"stock below zero", "POST", "/products/" + id + "/stock", map[string]any{"delta": -3}, nil, 409, "delta"},
		{"discontinued rename", "POST", "/products/" + gone + "/rename", map[string]any{"name": "x"}, nil, 409, ""},
		{"discontinued stock", "POST", "/products/" + gone + "/stock", map[string]any{"delta": 1}, nil, 409, ""},
		{"discontinue twice", "DELETE", "/products/" + gone, nil, nil, 409, ""},

		{"stale If-Match", "POST", "/products/" + id + "/rename", map[string]any{"name": "x"}, []string{"If-Match", "7"}, 412, "If-Match"},
		{"stale If-Match on DELETE", "DELETE", "/products/" + id, nil, []string{"If-Match", `"2"`}, 412, "If-Match"},

		{"body too large", "POST", "/products", big, nil, 413, ""},
		{"body too large, chunked", "POST", "/products", io.MultiReader(strings.NewReader(big)), nil, 413, ""},
		{"not JSON", "POST", "/products", `name=x`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "Content-Type"},
		{"no Content-Type", "POST", "/products/" + id + "/rename", `{"name":"x"}`, []string{"Content-Type", ""}, 415, "Content-Type"},

		{"method not allowed", "PUT", "/products/" + id, `{}`, nil, 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, s.do(t, tt.method, tt.path, tt.body, tt.hdr...), tt.status, tt.field)
		})
	}
	// None of it changed the product.
	if got := s.product(t, id, 1); got.Version != 1 || got.Stock != 2 || got.Name != "Lamp" {
		t.Errorf("after the failed requests: %+v", got)
	}
}

func testReadYourWrites(t *testing.T, s *service) {
	id := s.create(t, "Kettle", 4000, 0)
	var want int64
	for i := range 20 {
		want += int64(i + 1)
		v := s.command(t, id, "stock", map[string]any{"delta": i + 1})
		// No sleeping, no polling: the read returns the write at once.
		got := s.product(t, id, v)
		if got.Version != v || got.Stock != want {
			t.Fatalf("after write %d (version %d): read %+v, want stock %d", i, v, got, want)
		}
	}
}

func testConcurrentStock(t *testing.T, s *service) {
	const initial = 10
	id := s.create(t, "Teapot", 3000, initial)
	// 25 requests add 3, 25 remove 4: together they would take the stock
	// to 10 + 75 - 100 < 0, so some removals must be refused.
	var (
		wg                sync.WaitGroup
		mu                sync.Mutex
		applied, refused  int
		sum               int64
		start             = make(chan struct{})
		unexpectedAnswers []string
	)
	for i := range 50 {
		delta := int64(3)
		if i%2 == 1 {
			delta = -4
		}
		wg.Go(func() {
			<-start
			r := s.do(t, "POST", "/products/"+id+"/stock", map[string]any{"delta": delta})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.Status == http.StatusOK:
				applied++
				sum += delta
			case r.Status == http.StatusConflict && delta < 0 && strings.Contains(string(r.Body), `"field":"delta"`):
				refused++
			default:
				unexpectedAnswers = append(unexpectedAnswers, fmt.Sprintf("delta %d: %d %s", delta, r.Status, r.Body))
			}
		})
	}
	close(start)
	wg.Wait()
	if len(unexpectedAnswers) > 0 {
		t.Fatalf("unexpected answers:\n%s", strings.Join(unexpectedAnswers, "\n"))
	}
	if applied+refused != 50 || refused == 0 {
		t.Fatalf("%d applied, %d refused", applied, refused)
	}
	final := s.product(t, id, int64(1+applied))
	if final.Stock != initial+sum || final.Version != int64(1+applied) {
		t.Fatalf("read model: stock %d at version %d, want %d at %d", final.Stock, final.Version, initial+sum, 1+applied)
	}
	// The stored history never went below zero, and every event follows
	// from the one before.
	var h httpapi.History
	s.do(t, "GET", "/products/"+id+"/history", nil).want(t, http.StatusOK).decode(t, &h)
	if len(h.Events) != 1+applied {
		t.Fatalf("history has %d events, want %d", len(h.Events), 1+applied)
	}
	stock := int64(initial)
	for _, e := range h.Events[1:] {
		var d domain.StockAdjusted
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.Stock != stock+d.Delta || d.Stock < 0 {
			t.Fatalf("version %d: %+v after stock %d", e.Version, d, stock)
		}
		stock = d.Stock
	}
	// A snapshot was taken at version 50 (when reached); loading past it
	// still gives the exact state.
	var now app.ProductView
	s.do(t, "GET", fmt.Sprintf("/products/%s?at_version=%d", id, 1+applied), nil).want(t, http.StatusOK).decode(t, &now)
	if now.Stock != final.Stock {
		t.Errorf("state rebuilt from the store: stock %d, read model %d", now.Stock, final.Stock)
	}
}

func testStats(t *testing.T, s *service) {
	id := s.create(t, "Vase", 1500, 3)
	s.product(t, id, 1)
	got := checkStats(t, s)
	var rebuilt app.StatsView
	s.do(t, "POST", "/stats/rebuild", nil).want(t, http.StatusOK).decode(t, &rebuilt)
	// On PostgreSQL the rebuild reads only events older than every open
	// transaction on the server (gap-safe reading), so it may answer
	// before the newest ones; the running projection applies them next.
	if rebuilt.Products > got.Products {
		t.Errorf("after rebuild %+v, before %+v", rebuilt, got)
	}
	if again := checkStats(t, s); again != got {
		t.Errorf("rebuilt stats %+v, before %+v", again, got)
	}
}

// checkStats waits until the stats projection, which reads the event
// store, agrees with the products read model, which the broker feeds, and
// returns the stats.
func checkStats(t *testing.T, s *service) app.StatsView {
	t.Helper()
	expected := func() app.StatsView {
		var v app.StatsView
		value := new(big.Int)
		after := ""
		for {
			var l httpapi.ProductList
			s.do(t, "GET", "/products?limit=500&after="+after, nil).want(t, http.StatusOK).decode(t, &l)
			for _, p := range l.Products {
				v.Products++
				if !p.Discontinued {
					v.ActiveProducts++
					v.TotalStock += p.Stock
					value.Add(value, new(big.Int).Mul(big.NewInt(p.Stock), big.NewInt(p.PriceCents)))
				}
			}
			if l.Next == "" {
				v.TotalStockValueCents = json.Number(value.String())
				return v
			}
			after = l.Next
		}
	}
	var got app.StatsView
	eventually(t, 20*time.Second, func() string {
		want := expected()
		s.do(t, "GET", "/stats", nil).want(t, http.StatusOK).decode(t, &got)
		if got != want || want.Products == 0 {
			return fmt.Sprintf("stats %+v, want %+v", got, want)
		}
		return ""
	})
	return got
}

// testRestart restarts the service while clients keep writing: every
// accepted command ends up in the store, in the read model exactly once.
func testRestart(t *testing.T, s *service) {
	id := s.create(t, "Clock", 2000, 0)
	var (
		ok   atomic.Int64
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := s.try("POST", "/products/"+id+"/stock", map[string]any{"delta": 1})
				switch {
				case err != nil:
					t.Errorf("stock: %v", err)
					return
				case r.Status == http.StatusOK:
					ok.Add(1)
				case r.Status == http.StatusServiceUnavailable: // restarting
					time.Sleep(5 * time.Millisecond)
				default:
					t.Errorf("stock: %d %s", r.Status, r.Body)
					return
				}
			}
		})
	}
	waitFor := func(n int64) {
		eventually(t, 30*time.Second, func() string {
			if ok.Load() < n {
				return fmt.Sprintf("%d writes, want %d", ok.Load(), n)
			}
			return ""
		})
	}
	waitFor(15)
	s.restart()
	before := ok.Load()
	waitFor(before + 15)
	close(stop)
	wg.Wait()
	n := ok.Load()
	final := s.product(t, id, 1+n)
	if final.Stock != n || final.Version != 1+n {
		t.Fatalf("after %d accepted writes across a restart: %+v", n, final)
	}
	var h httpapi.History
	s.do(t, "GET", "/products/"+id+"/history", nil).want(t, http.StatusOK).decode(t, &h)
	if int64(len(h.Events)) != 1+n {
		t.Fatalf("history has %d events after %d accepted writes", len(h.Events), n)
	}
	checkStats(t, s) // the projection resumed from its checkpoint
}

// testCrash stops the service abruptly while clients write: requests in
// flight may fail after their commit, so the test accepts any outcome for
// those, but the read model must end up exactly at the store's state.
func testCrash(t *testing.T, s *service) {
	id := s.create(t, "Radio", 2000, 0)
	var (
		ok, unknown atomic.Int64
		stop        = make(chan struct{})
		wg          sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := s.try("POST", "/products/"+id+"/stock", map[string]any{"delta": 1})
				switch {
				case err != nil:
					unknown.Add(1)
				case r.Status == http.StatusOK:
					ok.Add(1)
				case r.Status == http.StatusServiceUnavailable && string(r.Body) == "restarting\n":
					time.Sleep(5 * time.Millisecond)
				default: // cut off mid-request: committed or not
					unknown.Add(1)
				}
			}
		})
	}
	waitFor := func(n int64) {
		eventually(t, 30*time.Second, func() string {
			if ok.Load() < n {
				return fmt.Sprintf("%d writes, want %d", ok.Load(), n)
			}
			return ""
		})
	}
	waitFor(15)
	s.crash()
	waitFor(ok.Load() + 15)
	close(stop)
	wg.Wait()

	var h httpapi.History
	s.do(t, "GET", "/products/"+id+"/history", nil).want(t, http.StatusOK).decode(t, &h)
	stored := int64(len(h.Events)) - 1
	if stored < ok.Load() || stored > ok.Load()+unknown.Load() {
		t.Fatalf("%d adjustments stored; %d were acknowledged and %d cut off", stored, ok.Load(), unknown.Load())
	}
	if got := s.product(t, id, 1+stored); got.Stock != stored || got.Version != 1+stored {
		t.Fatalf("read model %+v after %d stored adjustments", got, stored)
	}
	checkStats(t, s)
	t.Logf("%d acknowledged, %d cut off by the crash, %d stored", ok.Load(), unknown.Load(), stored)
}
