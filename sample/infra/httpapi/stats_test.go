package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/cqrskit/cqrskit/projection"
	"github.com/cqrskit/cqrskit/sample/app"
	"github.com/cqrskit/cqrskit/sample/domain"
	"github.com/cqrskit/cqrskit/sample/infra/httpapi"
)

// atMax is the number of products at the maximum price and stock whose
// stock value (10^18 each) sums beyond an int64 (9.2 × 10^18).
const atMax = 10

// wantValue is atMax products at 10^18 cents plus one at 7 × 3.
const wantValue = "10000000000000000021"

// TestStatsValueBeyondInt64: valid products whose price × stock sums
// beyond an int64 get /stats and /stats/rebuild answered with the exact
// sum (they answered 500 for good: SQLite's integer overflowed).
func TestStatsValueBeyondInt64(t *testing.T) {
	b := setup(t)
	stats := app.NewStats(b.store.DB(), b.svc.Registry())
	proj, err := projection.New(projection.Config{Name: "stats", Events: b.store, Checkpoints: b.store, Apply: stats.Apply})
	if err != nil {
		t.Fatal(err)
	}
	a := setupAPIOn(t, b, httpapi.HandlerConfig{Stats: stats,
		RebuildStats: func(ctx context.Context) error { return proj.Rebuild(ctx, stats.Reset, nil) }})
	ctx := context.Background()
	for i := range atMax {
		if _, _, err := b.svc.Create(ctx, app.NewProduct{Name: "Gold", SKU: fmt.Sprintf("GOLD-%d", i),
			PriceCents: domain.MaxPriceCents, Stock: domain.MaxStock}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := b.svc.Create(ctx, app.NewProduct{Name: "Pin", SKU: "PIN", PriceCents: 7, Stock: 3}); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"products":%d,"active_products":%d,"total_stock":%d,"total_stock_value_cents":%s}`,
		atMax+1, atMax+1, atMax*domain.MaxStock+3, wantValue)

	code, data := a.call(t, "POST", "/stats/rebuild", "")
	var rebuilt map[string]json.RawMessage
	if err := json.Unmarshal(data, &rebuilt); code != http.StatusOK || err != nil {
		t.Fatalf("POST /stats/rebuild: %d %s", code, data)
	}
	delete(rebuilt, "rebuilt_in")
	if got, _ := json.Marshal(rebuilt); !jsonEqual(t, got, want) {
		t.Errorf("POST /stats/rebuild: %s, want %s", got, want)
	}
	if code, data := a.call(t, "GET", "/stats", ""); code != http.StatusOK || !jsonEqual(t, data, want) {
		t.Errorf("GET /stats: %d %s, want 200 %s", code, data, want)
	}
}

// jsonEqual reports whether got is the JSON object want, member for member.
func jsonEqual(t *testing.T, got []byte, want string) bool {
	t.Helper()
	var g, w map[string]json.RawMessage
	if err := json.Unmarshal(got, &g); err != nil {
		return false
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if len(g) != len(w) {
		return false
	}
	for k, v := range w {
		if string(g[k]) != string(v) {
			return false
		}
	}
	return true
}
