package app_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cqrskit/cqrskit/sample/app"
	"github.com/cqrskit/cqrskit/sample/domain"
	"github.com/cqrskit/cqrskit/testutil/pgtest"
)

// atMax is the number of products at the maximum price and stock whose
// stock value (10^18 each) sums beyond an int64 (9.2 × 10^18).
const atMax = 10

// wantValue is atMax products at 10^18 cents plus one at 7 × 3.
const wantValue = "10000000000000000021"

// TestStatsValueBeyondInt64OnPostgres: the same sum on PostgreSQL, whose
// SUM of BIGINT is NUMERIC but whose cast back to BIGINT overflowed.
func TestStatsValueBeyondInt64OnPostgres(t *testing.T) {
	db := pgtest.New(t).DB()
	ctx := context.Background()
	if err := app.Migrate(ctx, db, app.Postgres, nil); err != nil {
		t.Fatal(err)
	}
	for i := range atMax {
		if _, err := db.ExecContext(ctx, `INSERT INTO stats_products (id, price_cents, stock) VALUES ($1, $2, $3)`,
			fmt.Sprint(i), domain.MaxPriceCents, domain.MaxStock); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO stats_products (id, price_cents, stock) VALUES ('pin', 7, 3), ('gone', 5, 5)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE stats_products SET discontinued = TRUE WHERE id = 'gone'`); err != nil {
		t.Fatal(err)
	}
	v, err := app.NewStats(db, domain.NewRegistry()).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := app.StatsView{Products: atMax + 2, ActiveProducts: atMax + 1, TotalStock: atMax*domain.MaxStock + 3,
		TotalStockValueCents: wantValue}
	if v != want {
		t.Fatalf("Get = %+v, want %+v", v, want)
	}
}
