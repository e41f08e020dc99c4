// Package domain is the sample's write model: the Product aggregate, its
// events and its rules, with no knowledge of HTTP, SQL or brokers.
//
// # The aggregate
//
// A Product is created with a name, a SKU, a unit price in cents and an
// initial stock; afterwards it can be renamed, repriced, have its stock
// adjusted by a signed delta, and be discontinued. Each command checks its
// rules against the current state and raises one event (or none, for a
// no-op such as renaming to the same name):
//
//	Create       -> Created       {name, sku, price_cents, stock}
//	Rename       -> Renamed       {name}
//	ChangePrice  -> PriceChanged  {price_cents, previous_price_cents}
//	AdjustStock  -> StockAdjusted {delta, stock}
//	Discontinue  -> Discontinued  {}
//
// Events are registered under stable names ("product.created", ...) by
// Register; their JSON field names are part of the stored format.
//
// # Rules
//
// Name and SKU are non-empty (after trimming spaces), the price is positive,
// the stock never goes below zero, and a discontinued product accepts no
// command. Rules that hold whatever the state fail with a *FieldError
// (errors.Is(err, ErrInvalid)) naming the argument; rules that depend on the
// state fail with ErrDiscontinued or a *StockError
// (errors.Is(err, ErrInsufficientStock)). The HTTP layer maps the first
// kind to 400 and the second to 409.
//
// # What the aggregate does not guarantee
//
// A SKU is unique across products, but one aggregate cannot see the
// others: the application reserves the SKU in a table written in the same
// transaction as the product's first events (app.Service.Create). A SKU
// stays reserved after its product is discontinued.
//
// Concurrent commands on one product are serialised by the event store's
// optimistic concurrency, not by the aggregate: two commands loaded at the
// same version cannot both be saved.
package domain
