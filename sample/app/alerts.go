package app

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/sample/domain"
)

// Alert is a low-stock alert: a stock adjustment that took a product's
// stock from at or above the threshold to below it.
type Alert struct {
	ID        string    `json:"id"` // the event's ID
	ProductID string    `json:"product_id"`
	Stock     int64     `json:"stock"`
	Threshold int64     `json:"threshold"`
	Version   int64     `json:"version"`
	RaisedAt  time.Time `json:"raised_at"`
}

// Alerts is the low-stock alerter, the second consumer of the product
// events. It decides from each StockAdjusted event alone (the event carries
// the stock after the adjustment), so it needs no state and no order.
type Alerts struct {
	db        *sql.DB
	reg       *event.Registry
	threshold int64
}

// NewAlerts returns the alerter: an alert when the stock falls below
// threshold.
func NewAlerts(db *sql.DB, reg *event.Registry, threshold int64) *Alerts {
	return &Alerts{db: db, reg: reg, threshold: threshold}
}

// Threshold returns the stock level below which alerts are raised.
func (a *Alerts) Threshold() int64 { return a.threshold }

// Apply records an alert in tx when e is a stock adjustment crossing the
// threshold downwards; see StockAdjusted.
func (a *Alerts) Apply(ctx context.Context, tx *sql.Tx, e event.Event) error {
	if e.Type != domain.TypeStockAdjusted {
		return nil
	}
	data, err := a.reg.Decode(e)
	if err != nil {
		return err
	}
	d, ok := data.(domain.StockAdjusted)
	if !ok {
		return fmt.Errorf("low-stock alerts: %s decoded as %T", e.Type, data)
	}
	return a.StockAdjusted(ctx, tx, e, d)
}

// StockAdjusted records an alert in tx when the adjustment took the stock
// from at or above the threshold to below it. The alert's key is the event
// ID, so applying an event twice records one alert. Its signature fits
// handler.For[domain.StockAdjusted].
func (a *Alerts) StockAdjusted(ctx context.Context, tx *sql.Tx, e event.Event, d domain.StockAdjusted) error {
	id, ok := productID(e)
	if !ok || d.Stock >= a.threshold || d.Stock-d.Delta < a.threshold {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO stock_alerts (event_id, product_id, stock, threshold, version, raised_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING`,
		e.ID.String(), id, d.Stock, a.threshold, e.Version, e.RecordedAt.UnixNano())
	return err
}

// List returns up to limit alerts raised after the alert with ID after
// ("" for the first page), oldest first.
func (a *Alerts) List(ctx context.Context, after string, limit int) ([]Alert, error) {
	rows, err := a.db.QueryContext(ctx, `SELECT event_id, product_id, stock, threshold, version, raised_at
		FROM stock_alerts WHERE event_id > $1 ORDER BY event_id LIMIT $2`, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Alert{}
	for rows.Next() {
		var (
			al Alert
			at int64
		)
		if err := rows.Scan(&al.ID, &al.ProductID, &al.Stock, &al.Threshold, &al.Version, &at); err != nil {
			return nil, err
		}
		al.RaisedAt = time.Unix(0, at).UTC()
		out = append(out, al)
	}
	return out, rows.Err()
}
