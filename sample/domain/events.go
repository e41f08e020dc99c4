package domain

import "github.com/cqrskit/cqrskit/event"

// StreamType names the Product aggregate's streams: "product-<id>". The
// outbox relay publishes a product's events to the broker topic of the same
// name.
const StreamType = "product"

// Event type names. They are stored with every event and must never change;
// a payload whose shape changes gets a new schema version and an upcaster
// instead (see event.Registry.Upcast).
const (
	TypeCreated       = "product.created"
	TypeRenamed       = "product.renamed"
	TypePriceChanged  = "product.price_changed"
	TypeStockAdjusted = "product.stock_adjusted"
	TypeDiscontinued  = "product.discontinued"
)

// Created is the first event of every product.
type Created struct {
	Name       string `json:"name"`
	SKU        string `json:"sku"`
	PriceCents int64  `json:"price_cents"`
	Stock      int64  `json:"stock"`
}

// Renamed changes the product's display name.
type Renamed struct {
	Name string `json:"name"`
}

// PriceChanged sets a new unit price. Previous is the price it replaced, so
// consumers can compute value changes without state of their own.
type PriceChanged struct {
	PriceCents int64 `json:"price_cents"`
	Previous   int64 `json:"previous_price_cents"`
}

// StockAdjusted changes the stock by Delta; Stock is the stock after the
// adjustment. Carrying the result lets a consumer such as the low-stock
// alerter decide from the event alone, in any order.
type StockAdjusted struct {
	Delta int64 `json:"delta"`
	Stock int64 `json:"stock"`
}

// Discontinued is the product's last event: it accepts no command after it.
type Discontinued struct{}

// Register registers the product's events in reg under their stable names.
func Register(reg *event.Registry) error {
	for _, err := range []error{
		event.Register[Created](reg, TypeCreated),
		event.Register[Renamed](reg, TypeRenamed),
		event.Register[PriceChanged](reg, TypePriceChanged),
		event.Register[StockAdjusted](reg, TypeStockAdjusted),
		event.Register[Discontinued](reg, TypeDiscontinued),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// NewRegistry returns a JSON registry holding the product's events.
func NewRegistry() *event.Registry {
	reg := event.NewRegistry(nil)
	if err := Register(reg); err != nil {
		panic(err) // a programming error: names are constants
	}
	return reg
}
