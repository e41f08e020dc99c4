package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cqrskit/cqrskit/sample/app"
	"github.com/cqrskit/cqrskit/sample/domain"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// The service over a SQLite store: commands load the product from its
// events, run, and append what they raised; past versions replay from the
// store.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "sample-app-example")
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
	id, v, err := svc.Create(ctx, app.NewProduct{Name: "Espresso cup", SKU: "CUP-ESP", PriceCents: 450, Stock: 12})
	if err != nil {
		panic(err)
	}
	fmt.Println("created at version", v)
	v, err = svc.Execute(ctx, id, 0, func(p *domain.Product) error { return p.ChangePrice(500) })
	if err != nil {
		panic(err)
	}
	fmt.Println("repriced at version", v)
	_, err = svc.Execute(ctx, id, 0, func(p *domain.Product) error { return p.AdjustStock(-20) })
	fmt.Println(err)
	past, err := svc.Product(ctx, id, 1)
	if err != nil {
		panic(err)
	}
	fmt.Println("price at version 1:", past.PriceCents)
	// Output:
	// created at version 1
	// repriced at version 2
	// adjust stock 12 by -20: insufficient stock: stock would become -8
	// price at version 1: 450
}
