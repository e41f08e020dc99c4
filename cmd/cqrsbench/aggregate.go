package main

import (
	"fmt"
	"log/slog"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
)

// The aggregate of the append and load scenarios: a product whose price
// changes, with payloads the size of the sample's.

type productCreated struct {
	Name       string `json:"name"`
	SKU        string `json:"sku"`
	PriceCents int64  `json:"price_cents"`
}

type priceChanged struct {
	PriceCents int64 `json:"price_cents"`
}

type product struct {
	es.Base
	Name       string
	SKU        string
	PriceCents int64
	Changes    int
}

func (p *product) Apply(data any) error {
	switch e := data.(type) {
	case productCreated:
		p.Name, p.SKU, p.PriceCents = e.Name, e.SKU, e.PriceCents
	case priceChanged:
		p.PriceCents = e.PriceCents
		p.Changes++
	default:
		return fmt.Errorf("product: unexpected event %T", data)
	}
	return nil
}

const (
	streamType     = "product"
	typeCreated    = "product.created"
	typePriceChang = "product.price_changed"
)

func newRegistry() *event.Registry {
	reg := event.NewRegistry(nil)
	event.MustRegister[productCreated](reg, typeCreated)
	event.MustRegister[priceChanged](reg, typePriceChang)
	return reg
}

// newRepository returns the repository of products in store; with snaps
// set it loads from and takes snapshots under policy.
func newRepository(store event.Store, snaps es.SnapshotStore, policy es.SnapshotPolicy, log *slog.Logger) (*es.Repository[*product], error) {
	cfg := es.RepositoryConfig[*product]{
		New:        func() *product { return &product{} },
		StreamType: streamType,
		Logger:     log,
	}
	if snaps != nil {
		cfg.Snapshots, cfg.SnapshotPolicy = snaps, policy
	}
	return es.NewRepository(store, newRegistry(), cfg)
}

// newProduct returns a new product with id that raised events events:
// created, then price changes.
func newProduct(id string, events int) (*product, error) {
	p := &product{}
	p.SetID(id)
	if err := es.Raise(p, productCreated{Name: "Widget", SKU: "W-0001", PriceCents: 1999}); err != nil {
		return nil, err
	}
	for i := 1; i < events; i++ {
		if err := es.Raise(p, priceChanged{PriceCents: int64(1999 + i)}); err != nil {
			return nil, err
		}
	}
	return p, nil
}
