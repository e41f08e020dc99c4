package domain_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/sample/domain"
	"github.com/cqrskit/cqrskit/testutil"
)

const id = "0190a5f2-0000-7000-8000-000000000001"

var created = domain.Created{Name: "Mug", SKU: "MUG-1", PriceCents: 900, Stock: 3}

func TestCreate(t *testing.T) {
	testutil.Given(t, domain.New()).
		When(func(p *domain.Product) error { return p.Create(id, "  Mug ", " MUG-1 ", 900, 3) }).
		Then(created)

	testutil.Given(t, domain.New(), created).
		When(func(p *domain.Product) error { return p.Create(id, "Mug", "MUG-1", 900, 3) }).
		ThenError(domain.ErrAlreadyCreated)
}

func TestCreateValidation(t *testing.T) {
	tests := []struct {
		name, pname, sku string
		price, stock     int64
		field            string
	}{
		{"empty name", " ", "A", 1, 0, "name"},
		{"long name", strings.Repeat("é", domain.MaxNameLen+1), "A", 1, 0, "name"},
		{"control in name", "a\nb", "A", 1, 0, "name"},
		{"empty sku", "n", "", 1, 0, "sku"},
		{"sku with space", "n", "A B", 1, 0, "sku"},
		{"sku starting with dash", "n", "-A", 1, 0, "sku"},
		{"long sku", "n", strings.Repeat("A", domain.MaxSKULen+1), 1, 0, "sku"},
		{"zero price", "n", "A", 0, 0, "price_cents"},
		{"negative price", "n", "A", -5, 0, "price_cents"},
		{"huge price", "n", "A", domain.MaxPriceCents + 1, 0, "price_cents"},
		{"negative stock", "n", "A", 1, -1, "stock"},
		{"huge stock", "n", "A", 1, domain.MaxStock + 1, "stock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := domain.New()
			err := p.Create(id, tt.pname, tt.sku, tt.price, tt.stock)
			var fe *domain.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("Create: err = %v, want a FieldError on %q", err, tt.field)
			}
			if n := len(p.Uncommitted()); n != 0 || p.ID() != "" {
				t.Fatalf("a failed Create changed the product: %d events, id %q", n, p.ID())
			}
		})
	}
}

func TestCommands(t *testing.T) {
	testutil.Given(t, domain.New(), created).
		When(func(p *domain.Product) error { return p.Rename("Big mug") }).
		Then(domain.Renamed{Name: "Big mug"})
	testutil.Given(t, domain.New(), created).
		When(func(p *domain.Product) error { return p.Rename("Mug") }).
		Then() // no-op
	testutil.Given(t, domain.New(), created).
		When(func(p *domain.Product) error { return p.ChangePrice(1200) }).
		Then(domain.PriceChanged{PriceCents: 1200, Previous: 900})
	testutil.Given(t, domain.New(), created).
		When(func(p *domain.Product) error { return p.ChangePrice(900) }).
		Then()
	testutil.Given(t, domain.New(), created).
		When(func(p *domain.Product) error { return p.AdjustStock(-3) }).
		Then(domain.StockAdjusted{Delta: -3, Stock: 0})
	testutil.Given(t, domain.New(), created, domain.StockAdjusted{Delta: 7, Stock: 10}).
		When(func(p *domain.Product) error { return p.AdjustStock(5) }).
		Then(domain.StockAdjusted{Delta: 5, Stock: 15})
	testutil.Given(t, domain.New(), created).
		When(func(p *domain.Product) error { return p.Discontinue() }).
		Then(domain.Discontinued{})
}

func TestStockNeverNegative(t *testing.T) {
	testutil.Given(t, domain.New(), created).
		When(func(p *domain.Product) error { return p.AdjustStock(-4) }).
		ThenError(domain.ErrInsufficientStock)
	testutil.Given(t, domain.New(), created).
		When(func(p *domain.Product) error { return p.AdjustStock(0) }).
		ThenError(domain.ErrInvalid)
	testutil.Given(t, domain.New(), created).
		When(func(p *domain.Product) error { return p.AdjustStock(domain.MaxStock) }).
		ThenError(domain.ErrInvalid)
}

func TestDiscontinuedAcceptsNothing(t *testing.T) {
	commands := map[string]func(*domain.Product) error{
		"rename":      func(p *domain.Product) error { return p.Rename("x") },
		"price":       func(p *domain.Product) error { return p.ChangePrice(1) },
		"stock":       func(p *domain.Product) error { return p.AdjustStock(1) },
		"discontinue": func(p *domain.Product) error { return p.Discontinue() },
	}
	for name, cmd := range commands {
		t.Run(name, func(t *testing.T) {
			testutil.Given(t, domain.New(), created, domain.Discontinued{}).When(cmd).ThenError(domain.ErrDiscontinued)
		})
	}
}

func TestCommandOnNewProduct(t *testing.T) {
	testutil.Given(t, domain.New()).
		When(func(p *domain.Product) error { return p.Rename("x") }).
		ThenError(domain.ErrNotCreated)
}

func TestRegistryRoundTrip(t *testing.T) {
	reg := domain.NewRegistry()
	for _, data := range []any{created, domain.Renamed{Name: "n"}, domain.PriceChanged{PriceCents: 2, Previous: 1},
		domain.StockAdjusted{Delta: -1, Stock: 2}, domain.Discontinued{}} {
		e, err := reg.NewEvent(data, event.Metadata{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := reg.Decode(e)
		if err != nil || got != data {
			t.Fatalf("%s: decoded %#v, %v; want %#v", e.Type, got, err, data)
		}
	}
}
