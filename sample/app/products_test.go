package app_test

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/sample/app"
	"github.com/cqrskit/cqrskit/sample/domain"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

type bundle struct {
	store *sqlite.Store
	svc   *app.Service
}

func setup(t *testing.T) bundle {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"), sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := app.Migrate(ctx, store.DB(), app.SQLite, nil); err != nil {
		t.Fatal(err)
	}
	svc, err := app.NewService(app.Config{Store: store, Snapshots: store})
	if err != nil {
		t.Fatal(err)
	}
	return bundle{store: store, svc: svc}
}

// history creates a product with a few commands and returns its events.
func (b bundle) history(t *testing.T) (string, []event.Event) {
	t.Helper()
	ctx := context.Background()
	id, _, err := b.svc.Create(ctx, app.NewProduct{Name: "Jug", SKU: "JUG-" + t.Name()[:3], PriceCents: 800, Stock: 9})
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []func(*domain.Product) error{
		func(p *domain.Product) error { return p.Rename("Big jug") },
		func(p *domain.Product) error { return p.AdjustStock(-5) },
		func(p *domain.Product) error { return p.ChangePrice(950) },
		func(p *domain.Product) error { return p.AdjustStock(2) },
		func(p *domain.Product) error { return p.Discontinue() },
	} {
		if _, err := b.svc.Execute(ctx, id, 0, cmd); err != nil {
			t.Fatal(err)
		}
	}
	events, _, err := b.svc.History(ctx, id, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	return id, events
}

func apply(t *testing.T, db *sql.DB, m *app.Products, e event.Event) error {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := m.Apply(context.Background(), tx, e); err != nil {
		return err
	}
	return tx.Commit()
}

// Events delivered in any order, some twice, leave the read model at the
// aggregate's state: gaps are filled from the store, repeats skipped.
func TestProductsOutOfOrder(t *testing.T) {
	b := setup(t)
	id, events := b.history(t)
	want, err := b.svc.Product(context.Background(), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	for seed := range uint64(20) {
		db := b.store.DB()
		if _, err := db.Exec(`DELETE FROM products`); err != nil {
			t.Fatal(err)
		}
		m := app.NewProducts(db, b.svc.Registry(), b.store)
		deliveries := append(append([]event.Event{}, events...), events[rand.New(rand.NewPCG(seed, 1)).IntN(len(events))])
		rand.New(rand.NewPCG(seed, 2)).Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
		for _, e := range deliveries {
			if err := apply(t, db, m, e); err != nil {
				t.Fatalf("seed %d: apply %s v%d: %v", seed, e.Type, e.Version, err)
			}
		}
		got, err := m.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got != app.ViewOf(want) {
			t.Fatalf("seed %d: read model %+v, want %+v", seed, got, app.ViewOf(want))
		}
	}
}

// Without an event store a gap is reported, for the handler to retry.
func TestProductsGapWithoutStore(t *testing.T) {
	b := setup(t)
	_, events := b.history(t)
	m := app.NewProducts(b.store.DB(), b.svc.Registry(), nil)
	var gap *app.GapError
	if err := apply(t, b.store.DB(), m, events[2]); !errors.As(err, &gap) || gap.Have != 0 || gap.Got != 3 {
		t.Fatalf("err = %v, want a GapError at 0 for version 3", err)
	}
}

// Two creates racing for one SKU: exactly one commits.
func TestSKUUniqueUnderRace(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, _, err := b.svc.Create(ctx, app.NewProduct{Name: "Cup", SKU: "RACE-1", PriceCents: 1, Stock: 1})
			errs <- err
		}()
	}
	ok := 0
	for range n {
		switch err := <-errs; {
		case err == nil:
			ok++
		case !errors.Is(err, app.ErrSKUTaken):
			t.Fatalf("create: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d creates with one SKU succeeded", ok)
	}
	var streams int
	if err := b.store.DB().QueryRow(`SELECT COUNT(*) FROM cqrs_streams`).Scan(&streams); err != nil || streams != 1 {
		t.Fatalf("%d streams stored (%v), want 1", streams, err)
	}
}

// Every 50 events the product is snapshotted; loads from the snapshot and
// past states before it agree with a full replay.
func TestSnapshotsEvery50(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	id, _, err := b.svc.Create(ctx, app.NewProduct{Name: "Pen", SKU: "PEN-1", PriceCents: 100, Stock: 0})
	if err != nil {
		t.Fatal(err)
	}
	for range 59 {
		if _, err := b.svc.Execute(ctx, id, 0, func(p *domain.Product) error { return p.AdjustStock(1) }); err != nil {
			t.Fatal(err)
		}
	}
	snap, ok, err := b.store.LoadSnapshot(ctx, "product-"+id)
	if err != nil || !ok || snap.Version != 50 || snap.SchemaVersion != domain.SnapshotVersion {
		t.Fatalf("snapshot: %+v, %v, %v; want one at version 50", snap, ok, err)
	}
	p, err := b.svc.Product(ctx, id, 0)
	if err != nil || p.Stock != 59 || p.Version() != 60 {
		t.Fatalf("load: %+v, %v", p, err)
	}
	for _, v := range []int64{1, 49, 50, 51} {
		p, err := b.svc.Product(ctx, id, v)
		if err != nil || p.Stock != v-1 || p.Version() != v {
			t.Fatalf("at version %d: %+v, %v", v, p, err)
		}
	}
}

// A reader waiting for a version is not satisfied by a report of an older
// one, and returns the row once the consumer reports the version it wants.
func TestWaitForWokenByNotifyApplied(t *testing.T) {
	b := setup(t)
	id, events := b.history(t)
	db := b.store.DB()
	m := app.NewProducts(db, b.svc.Registry(), b.store)
	// The consumer reports its commits: from now on readers trust reports.
	if err := apply(t, db, m, events[0]); err != nil {
		t.Fatal(err)
	}
	m.NotifyApplied(events[0])

	type result struct {
		v   app.ProductView
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := m.WaitFor(context.Background(), id, 3, 5*time.Second)
		done <- result{v, err}
	}()
	time.Sleep(20 * time.Millisecond)
	// A commit of another version does not satisfy the reader.
	if err := apply(t, db, m, events[1]); err != nil {
		t.Fatal(err)
	}
	m.NotifyApplied(events[1])
	select {
	case r := <-done:
		t.Fatalf("WaitFor returned at version 2: %+v, %v", r.v, r.err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := apply(t, db, m, events[2]); err != nil {
		t.Fatal(err)
	}
	m.NotifyApplied(events[2])
	r := <-done
	if r.err != nil || r.v.Version < 3 {
		t.Fatalf("WaitFor = %+v, %v; want version >= 3", r.v, r.err)
	}
	// Timing out reports how far the read model got.
	_, err := m.WaitFor(context.Background(), id, 99, 50*time.Millisecond)
	var nc *app.NotCaughtUpError
	if !errors.As(err, &nc) || nc.Want != 99 || nc.Have < 3 {
		t.Errorf("WaitFor(99) = %v, want a NotCaughtUpError with have >= 3", err)
	}
}

// CheckVersion tells a version that exists from one the product has not
// reached and from a product that does not exist.
func TestCheckVersion(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	id, _, err := b.svc.Create(ctx, app.NewProduct{Name: "Pen", SKU: "PEN-CV", PriceCents: 100, Stock: 0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.Execute(ctx, id, 0, func(p *domain.Product) error { return p.AdjustStock(1) }); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int64{1, 2} {
		if err := b.svc.CheckVersion(ctx, id, v); err != nil {
			t.Errorf("CheckVersion(%d) of a product at version 2 = %v, want nil", v, err)
		}
	}
	var vnf *app.VersionNotFoundError
	if err := b.svc.CheckVersion(ctx, id, 3); !errors.As(err, &vnf) || vnf.Have != 2 || vnf.Want != 3 {
		t.Errorf("CheckVersion(3) of a product at version 2 = %v, want a *VersionNotFoundError with Have 2, Want 3", err)
	}
	var nf *app.NotFoundError
	if err := b.svc.CheckVersion(ctx, "01a2372e-c575-7bd0-85da-5c0a7547a4ac", 1); !errors.As(err, &nf) {
		t.Errorf("CheckVersion of an unknown product = %v, want a *NotFoundError", err)
	}
}
