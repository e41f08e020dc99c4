package app

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/sample/domain"
)

// StatsView is the catalogue summary served at /stats.
type StatsView struct {
	// Products counts every product ever created; ActiveProducts those not
	// discontinued.
	Products       int64 `json:"products"`
	ActiveProducts int64 `json:"active_products"`
	// TotalStock sums the stock of the active products.
	TotalStock int64 `json:"total_stock"`
	// TotalStockValueCents sums price × stock of the active products,
	// exactly: a JSON integer that can exceed an int64 (ten products at
	// the maximum price and stock do), so decode it into a json.Number
	// or a big.Int, not an int64. JavaScript's numbers keep 15 digits.
	TotalStockValueCents json.Number `json:"total_stock_value_cents"`
}

// Stats is the second read model, built by a projection that reads the
// event store itself (not the broker) and can be rebuilt from it. Apply
// sets state rather than adding to it, so replaying events is harmless.
type Stats struct {
	db  *sql.DB
	reg *event.Registry
}

// NewStats returns the stats read model on db.
func NewStats(db *sql.DB, reg *event.Registry) *Stats { return &Stats{db: db, reg: reg} }

// Apply applies one event to stats_products in tx; other stream types are
// ignored.
func (s *Stats) Apply(ctx context.Context, tx *sql.Tx, e event.Event) error {
	id, ok := productID(e)
	if !ok {
		return nil
	}
	data, err := s.reg.Decode(e)
	if err != nil {
		return err
	}
	switch d := data.(type) {
	case domain.Created:
		_, err = tx.ExecContext(ctx, `INSERT INTO stats_products (id, price_cents, stock, discontinued) VALUES ($1, $2, $3, FALSE)
			ON CONFLICT (id) DO UPDATE SET price_cents = excluded.price_cents, stock = excluded.stock, discontinued = FALSE`,
			id, d.PriceCents, d.Stock)
	case domain.PriceChanged:
		_, err = tx.ExecContext(ctx, `UPDATE stats_products SET price_cents = $2 WHERE id = $1`, id, d.PriceCents)
	case domain.StockAdjusted:
		_, err = tx.ExecContext(ctx, `UPDATE stats_products SET stock = $2 WHERE id = $1`, id, d.Stock)
	case domain.Discontinued:
		_, err = tx.ExecContext(ctx, `UPDATE stats_products SET discontinued = TRUE WHERE id = $1`, id)
	case domain.Renamed:
		// not counted
	default:
		return fmt.Errorf("stats projection: unexpected event %s (%T)", e.Type, data)
	}
	return err
}

// Reset deletes the projection's state in tx, before a rebuild.
func (s *Stats) Reset(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM stats_products`)
	return err
}

// valueSplit splits each product's price × stock (at most
// domain.MaxPriceCents × domain.MaxStock = 10^18, inside an int64) into a
// high and a low part at valueSplit, so the database sums two parts that
// each stay inside an int64 for billions of products, where summing the
// products themselves overflows SQLite's integer (and PostgreSQL's BIGINT)
// at ten. Get adds the parts up exactly.
const valueSplit = 1_000_000_000

// Get returns the current summary.
func (s *Stats) Get(ctx context.Context) (StatsView, error) {
	var (
		v      StatsView
		hi, lo int64
	)
	err := s.db.QueryRowContext(ctx, `SELECT
			COUNT(*),
			CAST(COALESCE(SUM(CASE WHEN discontinued THEN 0 ELSE 1 END), 0) AS BIGINT),
			CAST(COALESCE(SUM(CASE WHEN discontinued THEN 0 ELSE stock END), 0) AS BIGINT),
			CAST(COALESCE(SUM(CASE WHEN discontinued THEN 0 ELSE (price_cents * stock) / $1 END), 0) AS BIGINT),
			CAST(COALESCE(SUM(CASE WHEN discontinued THEN 0 ELSE (price_cents * stock) % $1 END), 0) AS BIGINT)
		FROM stats_products`, int64(valueSplit)).Scan(&v.Products, &v.ActiveProducts, &v.TotalStock, &hi, &lo)
	if err != nil {
		return StatsView{}, fmt.Errorf("stats: %w", err)
	}
	total := new(big.Int).Mul(big.NewInt(hi), big.NewInt(valueSplit))
	v.TotalStockValueCents = json.Number(total.Add(total, big.NewInt(lo)).String())
	return v, nil
}
