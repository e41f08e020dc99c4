package domain

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cqrskit/cqrskit/es"
)

// Limits on command arguments. They keep a product's stock value,
// price × stock, well inside an int64.
const (
	MaxNameLen    = 200           // characters
	MaxSKULen     = 64            // bytes
	MaxPriceCents = 1_000_000_000 // 10 million in the currency's units
	MaxStock      = 1_000_000_000
)

// SnapshotVersion is the schema version of Product's snapshot, its exported
// fields as JSON. Bump it when those fields change: older snapshots are then
// ignored and the stream is replayed.
const SnapshotVersion = 1

// Product is the aggregate: a product for sale, with a unique SKU, a price
// and a stock level. Its exported fields are its state and its snapshot.
//
// Commands check every rule before they raise an event, so a failing
// command changes nothing. The SKU's uniqueness across products cannot be
// checked by one aggregate: the application reserves the SKU in the same
// transaction as the first append (see the app package).
type Product struct {
	es.Base
	Name         string `json:"name"`
	SKU          string `json:"sku"`
	PriceCents   int64  `json:"price_cents"`
	Stock        int64  `json:"stock"`
	Discontinued bool   `json:"discontinued"`
}

// New returns an empty product, for es.RepositoryConfig.New.
func New() *Product { return &Product{} }

// Create makes p, a new product, the product id with the given name, SKU,
// unit price and initial stock. Name and SKU are trimmed of surrounding
// spaces.
func (p *Product) Create(id, name, sku string, priceCents, stock int64) error {
	if p.created() {
		return fmt.Errorf("create product %s: %w", id, ErrAlreadyCreated)
	}
	name, sku = strings.TrimSpace(name), strings.TrimSpace(sku)
	if err := firstErr(checkName(name), checkSKU(sku), checkPrice(priceCents), checkInitialStock(stock)); err != nil {
		return err
	}
	if id == "" {
		return &FieldError{Field: "id", Reason: "must not be empty"}
	}
	p.SetID(id)
	return es.Raise(p, Created{Name: name, SKU: sku, PriceCents: priceCents, Stock: stock})
}

// Rename gives the product a new name. Renaming to the current name is a
// no-op.
func (p *Product) Rename(name string) error {
	if err := p.accepting(); err != nil {
		return err
	}
	name = strings.TrimSpace(name)
	if err := checkName(name); err != nil {
		return err
	}
	if name == p.Name {
		return nil
	}
	return es.Raise(p, Renamed{Name: name})
}

// ChangePrice sets a new unit price. Setting the current price is a no-op.
func (p *Product) ChangePrice(priceCents int64) error {
	if err := p.accepting(); err != nil {
		return err
	}
	if err := checkPrice(priceCents); err != nil {
		return err
	}
	if priceCents == p.PriceCents {
		return nil
	}
	return es.Raise(p, PriceChanged{PriceCents: priceCents, Previous: p.PriceCents})
}

// AdjustStock adds delta (negative to remove) to the stock. The stock never
// goes below zero: such an adjustment fails with a *StockError.
func (p *Product) AdjustStock(delta int64) error {
	if err := p.accepting(); err != nil {
		return err
	}
	switch {
	case delta == 0:
		return &FieldError{Field: "delta", Reason: "must not be 0"}
	case delta > MaxStock || delta < -MaxStock:
		return &FieldError{Field: "delta", Reason: fmt.Sprintf("must be between -%d and %d", MaxStock, MaxStock)}
	case p.Stock+delta < 0:
		return &StockError{Stock: p.Stock, Delta: delta}
	case p.Stock+delta > MaxStock:
		return &FieldError{Field: "delta", Reason: fmt.Sprintf("stock %d + %d would exceed the maximum %d", p.Stock, delta, MaxStock)}
	}
	return es.Raise(p, StockAdjusted{Delta: delta, Stock: p.Stock + delta})
}

// Discontinue retires the product for good: it accepts no command after.
func (p *Product) Discontinue() error {
	if err := p.accepting(); err != nil {
		return err
	}
	return es.Raise(p, Discontinued{})
}

// Apply changes the product's state by one event. It checks no rule: the
// commands did, and stored events are facts.
func (p *Product) Apply(data any) error {
	switch e := data.(type) {
	case Created:
		p.Name, p.SKU, p.PriceCents, p.Stock = e.Name, e.SKU, e.PriceCents, e.Stock
	case Renamed:
		p.Name = e.Name
	case PriceChanged:
		p.PriceCents = e.PriceCents
	case StockAdjusted:
		p.Stock = e.Stock
	case Discontinued:
		p.Discontinued = true
	default:
		return fmt.Errorf("product: unexpected event %T", data)
	}
	return nil
}

// created reports whether p has its Created event, stored or raised.
func (p *Product) created() bool { return p.Version() > 0 || len(p.Uncommitted()) > 0 }

// accepting returns why p cannot take a command, or nil.
func (p *Product) accepting() error {
	switch {
	case !p.created():
		return ErrNotCreated
	case p.Discontinued:
		return &DiscontinuedError{ID: p.ID()}
	}
	return nil
}

func checkName(name string) error {
	switch {
	case name == "":
		return &FieldError{Field: "name", Reason: "must not be empty"}
	case !utf8.ValidString(name):
		return &FieldError{Field: "name", Reason: "must be valid UTF-8"}
	case utf8.RuneCountInString(name) > MaxNameLen:
		return &FieldError{Field: "name", Reason: fmt.Sprintf("must be at most %d characters", MaxNameLen)}
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return &FieldError{Field: "name", Reason: "must not contain control characters"}
	}
	return nil
}

// checkSKU allows letters, digits and . _ - after a letter or digit: SKUs
// end up in URLs, file names and labels.
func checkSKU(sku string) error {
	if sku == "" {
		return &FieldError{Field: "sku", Reason: "must not be empty"}
	}
	if len(sku) > MaxSKULen {
		return &FieldError{Field: "sku", Reason: fmt.Sprintf("must be at most %d characters", MaxSKULen)}
	}
	for i := 0; i < len(sku); i++ {
		c := sku[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return &FieldError{Field: "sku", Reason: "must be ASCII letters, digits, '.', '_' and '-', starting with a letter or digit"}
		}
	}
	return nil
}

func checkPrice(cents int64) error {
	if cents <= 0 || cents > MaxPriceCents {
		return &FieldError{Field: "price_cents", Reason: fmt.Sprintf("must be between 1 and %d", MaxPriceCents)}
	}
	return nil
}

func checkInitialStock(stock int64) error {
	if stock < 0 || stock > MaxStock {
		return &FieldError{Field: "stock", Reason: fmt.Sprintf("must be between 0 and %d", MaxStock)}
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
