package domain

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalid: a command's argument breaks a rule that holds whatever the
	// product's state (an empty name, a price of zero). The error is a
	// *FieldError naming the argument.
	ErrInvalid = errors.New("invalid argument")
	// ErrDiscontinued: the product is discontinued and accepts no command.
	// The error is a *DiscontinuedError.
	ErrDiscontinued = errors.New("product is discontinued")
	// ErrInsufficientStock: the adjustment would take the stock below zero.
	// The error is a *StockError with the detail.
	ErrInsufficientStock = errors.New("insufficient stock")
	// ErrAlreadyCreated: Create was called on a product that exists.
	ErrAlreadyCreated = errors.New("product already created")
	// ErrNotCreated: a command other than Create was called on a product
	// that has no events.
	ErrNotCreated = errors.New("product not created")
)

// FieldError names the command argument that is invalid and why. It
// satisfies errors.Is(err, ErrInvalid).
type FieldError struct {
	Field  string // the JSON name of the argument, for example "price_cents"
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

// Is reports whether target is ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// DiscontinuedError names the discontinued product a command was refused
// on. It satisfies errors.Is(err, ErrDiscontinued).
type DiscontinuedError struct{ ID string }

func (e *DiscontinuedError) Error() string {
	return fmt.Sprintf("product %s is discontinued and accepts no command", e.ID)
}

// Is reports whether target is ErrDiscontinued.
func (e *DiscontinuedError) Is(target error) bool { return target == ErrDiscontinued }

// StockError reports an adjustment that would make the stock negative. It
// satisfies errors.Is(err, ErrInsufficientStock).
type StockError struct {
	Stock int64 // the stock before the adjustment
	Delta int64
}

func (e *StockError) Error() string {
	return fmt.Sprintf("adjust stock %d by %d: %v: stock would become %d", e.Stock, e.Delta, ErrInsufficientStock, e.Stock+e.Delta)
}

// Is reports whether target is ErrInsufficientStock.
func (e *StockError) Is(target error) bool { return target == ErrInsufficientStock }
