package event_test

import (
	"errors"
	"fmt"

	"github.com/cqrskit/cqrskit/event"
)

type ProductCreated struct {
	Name string `json:"name"`
}

// ProductPriced is version 2 of "product.priced": version 1 stored a price
// in whole euros as "euros".
type ProductPriced struct {
	Cents int64 `json:"cents"`
}

func ExampleRegistry() {
	reg := event.NewRegistry(nil) // JSON codec
	event.MustRegister[ProductCreated](reg, "product.created")

	e, _ := reg.NewEvent(ProductCreated{Name: "Lamp"}, event.Metadata{CorrelationID: "req-1"})
	fmt.Println(e.Type, e.SchemaVersion, string(e.Data))

	v, _ := reg.Decode(e)
	fmt.Printf("%#v\n", v)
	// Output:
	// product.created 1 {"name":"Lamp"}
	// event_test.ProductCreated{Name:"Lamp"}
}

func ExampleRegistry_Upcast() {
	reg := event.NewRegistry(nil)
	_ = event.RegisterVersion[ProductPriced](reg, "product.priced", 2)
	_ = reg.Upcast("product.priced", 1, func(data []byte) ([]byte, error) {
		var v1 struct{ Euros int64 }
		if _, err := fmt.Sscanf(string(data), `{"euros":%d}`, &v1.Euros); err != nil {
			return nil, err
		}
		return fmt.Appendf(nil, `{"cents":%d}`, v1.Euros*100), nil
	})

	stored := event.Event{Type: "product.priced", SchemaVersion: 1, Data: []byte(`{"euros":12}`)}
	v, err := reg.Decode(stored)
	fmt.Printf("%#v %v\n", v, err)
	// Output: event_test.ProductPriced{Cents:1200} <nil>
}

func ExampleConcurrencyError() {
	err := event.Exactly(3).Check("product-42", 5)
	var ce *event.ConcurrencyError
	fmt.Println(errors.Is(err, event.ErrConcurrencyConflict), errors.As(err, &ce) && ce.Actual == 5)
	fmt.Println(err)
	// Output:
	// true true
	// append to stream product-42: expected version 3, stream is at version 5: concurrency conflict
}
