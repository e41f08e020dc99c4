package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/sample/domain"
)

// ProductView is a product as the API shows it.
type ProductView struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	SKU          string `json:"sku"`
	PriceCents   int64  `json:"price_cents"`
	Stock        int64  `json:"stock"`
	Discontinued bool   `json:"discontinued"`
	Version      int64  `json:"version"`
}

// ViewOf returns the view of an aggregate loaded from the event store.
func ViewOf(p *domain.Product) ProductView {
	return ProductView{ID: p.ID(), Name: p.Name, SKU: p.SKU, PriceCents: p.PriceCents,
		Stock: p.Stock, Discontinued: p.Discontinued, Version: p.Version()}
}

// Products is the products read model: the products table, fed by Apply
// from the broker (through an idempotent handler, which commits Apply's
// writes with its dedupe mark) and read by the API.
type Products struct {
	db     *sql.DB
	reg    *event.Registry
	events event.Store
	poll   time.Duration

	mu sync.Mutex
	// waiters are the readers in WaitFor, by product ID. NotifyApplied
	// wakes only those of its product whose version has come, so a crowd
	// of waiting readers costs nothing per commit; Notify wakes them all.
	waiters map[string]map[*waiter]struct{}
	// applied is the highest version this process's consumer committed per
	// product (see NotifyApplied); with local, WaitFor queries the table
	// only when it says the wanted version is there, or on a slow poll.
	applied map[string]int64
	local   bool
}

// waiter is one reader in WaitFor, woken by closing woken.
type waiter struct {
	min   int64
	woken chan struct{}
}

// localPoll is WaitFor's safety-net poll when this process's own consumer
// reports commits through NotifyApplied (another process may apply some).
// Without such reports WaitFor polls from Products.poll, doubling up to
// maxPoll, so that a crowd of readers of a late read model does not flood
// the database it is waiting for.
const (
	localPoll = time.Second
	maxPoll   = time.Second
)

// NewProducts returns the read model on db, decoding events with reg.
// events, the event store, fills gaps (see Apply); nil disables that.
func NewProducts(db *sql.DB, reg *event.Registry, events event.Store) *Products {
	return &Products{db: db, reg: reg, events: events, poll: 25 * time.Millisecond,
		waiters: map[string]map[*waiter]struct{}{}, applied: map[string]int64{}}
}

// Apply applies one product event to the products table in tx. Events of
// other stream types are ignored.
//
// Each event moves a product from version v-1 to v. An event already
// applied (v at or below the row's version) is skipped, so a redelivery
// changes nothing. An event that arrives before its predecessors does not
// wait for them: a broker redelivers an unacknowledged message only after
// its ack timeout, possibly after later ones, and consumers sharing a group
// see a product's events in any order. Apply reads the missing events from
// the event store, the source of truth, and applies them first; when they
// arrive themselves they are skipped. Without an event store it fails with
// a *GapError, and the handler retries.
func (m *Products) Apply(ctx context.Context, tx *sql.Tx, e event.Event) error {
	id, ok := productID(e)
	if !ok {
		return nil
	}
	err := m.apply(ctx, tx, id, e)
	var gap *GapError
	if !errors.As(err, &gap) || m.events == nil {
		return err
	}
	for prev, err := range m.events.Load(ctx, e.StreamID, gap.Have+1) {
		if err != nil {
			return fmt.Errorf("products read model: fill versions %d to %d of product %s from the store: %w", gap.Have+1, e.Version-1, id, err)
		}
		if prev.Version >= e.Version {
			break
		}
		if err := m.apply(ctx, tx, id, prev); err != nil {
			return err
		}
	}
	return m.apply(ctx, tx, id, e)
}

// apply applies e, one event of product id, or returns a *GapError.
func (m *Products) apply(ctx context.Context, tx *sql.Tx, id string, e event.Event) error {
	data, err := m.reg.Decode(e)
	if err != nil {
		return err
	}
	at := e.RecordedAt.UnixNano()
	if d, ok := data.(domain.Created); ok {
		if e.Version != 1 {
			return fmt.Errorf("products read model: %s at version %d of product %s", e.Type, e.Version, id)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO products (id, name, sku, price_cents, stock, discontinued, version, updated_at)
			VALUES ($1, $2, $3, $4, $5, FALSE, 1, $6) ON CONFLICT (id) DO NOTHING`,
			id, d.Name, d.SKU, d.PriceCents, d.Stock, at)
		return err
	}
	var (
		set string
		arg any
	)
	switch d := data.(type) {
	case domain.Renamed:
		set, arg = "name = $4", d.Name
	case domain.PriceChanged:
		set, arg = "price_cents = $4", d.PriceCents
	case domain.StockAdjusted:
		set, arg = "stock = $4", d.Stock
	case domain.Discontinued:
		set, arg = "discontinued = $4", true
	default:
		return fmt.Errorf("products read model: unexpected event %s (%T)", e.Type, data)
	}
	res, err := tx.ExecContext(ctx, `UPDATE products SET `+set+`, version = $2, updated_at = $3
		WHERE id = $1 AND version = $2 - 1`, id, e.Version, at, arg)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	var have int64
	err = tx.QueryRowContext(ctx, `SELECT version FROM products WHERE id = $1`, id).Scan(&have)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if have >= e.Version {
		return nil // applied before
	}
	return &GapError{ID: id, Have: have, Got: e.Version}
}

// Notify wakes readers waiting in WaitFor. Call it after a transaction in
// which Apply wrote commits; readers in other processes poll instead.
func (m *Products) Notify() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, ws := range m.waiters {
		for w := range ws {
			close(w.woken)
		}
		delete(m.waiters, id)
	}
}

// NotifyApplied records that this process's consumer committed e to the
// read model and wakes the readers waiting for e's product at e's version
// or below. From the first call on, WaitFor trusts these reports and
// queries the table only when one says the wanted version is there (or
// every localPoll, for other writers), which keeps a crowd of waiting
// readers from querying on every commit.
func (m *Products) NotifyApplied(e event.Event) {
	id, ok := productID(e)
	if !ok {
		m.Notify()
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.local = true
	if e.Version > m.applied[id] {
		m.applied[id] = e.Version
	}
	ws := m.waiters[id]
	for w := range ws {
		if w.min <= m.applied[id] {
			close(w.woken)
			delete(ws, w)
		}
	}
	if len(ws) == 0 {
		delete(m.waiters, id)
	}
}

// wait registers a reader of product id at minVersion. It reports whether
// this process's consumer reports its commits (see NotifyApplied) and
// returns a function that unregisters the reader.
func (m *Products) wait(id string, minVersion int64) (w *waiter, local bool, done func()) {
	w = &waiter{min: minVersion, woken: make(chan struct{})}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.waiters[id] == nil {
		m.waiters[id] = map[*waiter]struct{}{}
	}
	m.waiters[id][w] = struct{}{}
	return w, m.local, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if ws := m.waiters[id]; ws != nil {
			delete(ws, w)
			if len(ws) == 0 {
				delete(m.waiters, id)
			}
		}
	}
}

const productColumns = `id, name, sku, price_cents, stock, discontinued, version`

func scanProduct(scan func(...any) error) (ProductView, error) {
	var v ProductView
	err := scan(&v.ID, &v.Name, &v.SKU, &v.PriceCents, &v.Stock, &v.Discontinued, &v.Version)
	return v, err
}

// Get returns product id from the read model, or ErrNotFound.
func (m *Products) Get(ctx context.Context, id string) (ProductView, error) {
	id, err := ParseID(id)
	if err != nil {
		return ProductView{}, err
	}
	v, err := scanProduct(m.db.QueryRowContext(ctx, `SELECT `+productColumns+` FROM products WHERE id = $1`, id).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return ProductView{}, &NotFoundError{ID: id}
	}
	return v, err
}

// WaitFor returns product id once the read model has it at minVersion or
// later, waiting at most timeout. When time is up the error is a
// *NotCaughtUpError.
func (m *Products) WaitFor(ctx context.Context, id string, minVersion int64, timeout time.Duration) (ProductView, error) {
	start := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var v ProductView
	interval := m.poll
	for {
		// Registered before reading: a commit after the read wakes us.
		w, local, done := m.wait(id, minVersion)
		var err error
		v, err = m.Get(ctx, id)
		switch {
		case err == nil && v.Version >= minVersion:
			done()
			return v, nil
		case err != nil && !errors.Is(err, ErrNotFound):
			done()
			return ProductView{}, err
		}
		wait := interval
		if local {
			wait = localPoll
		}
		interval = min(2*interval, maxPoll)
		poll := time.NewTimer(wait)
		select {
		case <-w.woken:
		case <-poll.C:
		case <-deadline.C:
			done()
			poll.Stop()
			return ProductView{}, &NotCaughtUpError{ID: id, Want: minVersion, Have: v.Version,
				Elapsed: time.Since(start).Round(time.Millisecond).String()}
		case <-ctx.Done():
			done()
			poll.Stop()
			return ProductView{}, ctx.Err()
		}
		done()
		poll.Stop()
	}
}

// List returns up to limit products with an ID after after ("" for the
// first page), in ID order, which for UUIDv7 IDs is creation order.
func (m *Products) List(ctx context.Context, after string, limit int) ([]ProductView, error) {
	rows, err := m.db.QueryContext(ctx, `SELECT `+productColumns+` FROM products WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []ProductView{}
	for rows.Next() {
		v, err := scanProduct(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// productID returns the product ID of a product event.
func productID(e event.Event) (string, bool) {
	id, ok := strings.CutPrefix(e.StreamID, domain.StreamType+"-")
	if !ok || (e.StreamType != "" && e.StreamType != domain.StreamType) {
		return "", false
	}
	return id, true
}
