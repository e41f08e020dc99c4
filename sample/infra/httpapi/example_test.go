package httpapi_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/cqrskit/cqrskit/sample/app"
	"github.com/cqrskit/cqrskit/sample/infra/httpapi"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// The API over a SQLite store, without a broker: commands are answered from
// the event store, and ?at_version reads past states from it too.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "sample-example")
	defer os.RemoveAll(dir)
	store, err := sqlite.Open(ctx, filepath.Join(dir, "events.db"), sqlite.Config{})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		panic(err)
	}
	if err := app.Migrate(ctx, store.DB(), app.SQLite, nil); err != nil {
		panic(err)
	}
	svc, err := app.NewService(app.Config{Store: store, Snapshots: store})
	if err != nil {
		panic(err)
	}
	db, reg := store.DB(), svc.Registry()
	h, err := httpapi.NewHandler(httpapi.HandlerConfig{
		Service:  svc,
		Products: app.NewProducts(db, reg, store),
		Alerts:   app.NewAlerts(db, reg, 5),
		Stats:    app.NewStats(db, reg),
	})
	if err != nil {
		panic(err)
	}
	call := func(method, path, body string, header ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	rec := call("POST", "/products", `{"name":"Espresso cup","sku":"CUP-ESP","price_cents":450,"stock":12}`)
	fmt.Println(rec.Code)
	loc := rec.Header().Get("Location")
	fmt.Println(call("POST", loc+"/price", `{"price_cents":500}`, "If-Match", "1").Code)
	fmt.Println(call("POST", loc+"/price", `{"price_cents":550}`, "If-Match", "1").Code)
	fmt.Println(strings.TrimSpace(call("POST", loc+"/stock", `{"delta":-20}`).Body.String()))

	past := call("GET", loc+"?at_version=1", "").Body.String()
	fmt.Println(strings.Contains(past, `"price_cents":450`))
	// Output:
	// 201
	// 200
	// 412
	// {"error":"adjust stock 12 by -20: insufficient stock: stock would become -8","field":"delta"}
	// true
}
