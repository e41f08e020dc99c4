package domain_test

import (
	"errors"
	"fmt"

	"github.com/cqrskit/cqrskit/sample/domain"
)

func Example() {
	p := domain.New()
	_ = p.Create("0190a5f2-0000-7000-8000-000000000001", "Espresso cup", "CUP-ESP", 450, 12)
	_ = p.AdjustStock(-5)
	_ = p.ChangePrice(500)
	fmt.Println(p.Name, p.SKU, p.PriceCents, p.Stock)

	// A rule that depends on the state: the stock never goes below zero.
	err := p.AdjustStock(-8)
	fmt.Println(errors.Is(err, domain.ErrInsufficientStock), err)

	// A rule on the argument alone names the field.
	var fe *domain.FieldError
	err = p.ChangePrice(0)
	fmt.Println(errors.As(err, &fe), fe.Field)

	for _, e := range p.Uncommitted() {
		fmt.Printf("%T %+v\n", e, e)
	}
	// Output:
	// Espresso cup CUP-ESP 500 7
	// true adjust stock 7 by -8: insufficient stock: stock would become -1
	// true price_cents
	// domain.Created {Name:Espresso cup SKU:CUP-ESP PriceCents:450 Stock:12}
	// domain.StockAdjusted {Delta:-5 Stock:7}
	// domain.PriceChanged {PriceCents:500 Previous:450}
}
