package app

import (
	"errors"
	"fmt"
)

var (
	// ErrNotFound: no product has the ID, or the read model does not have
	// it yet.
	ErrNotFound = errors.New("product not found")
	// ErrSKUTaken: another product holds the SKU. The error is a
	// *SKUTakenError.
	ErrSKUTaken = errors.New("SKU already taken")
	// ErrPreconditionFailed: the command was conditional on a version
	// (If-Match) the product is not at. The error is a *PreconditionError.
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrNotCaughtUp: the read model did not reach the wanted version in
	// time. The error is a *NotCaughtUpError.
	ErrNotCaughtUp = errors.New("read model has not caught up")
)

// SKUTakenError names the SKU and the product holding it.
type SKUTakenError struct {
	SKU       string
	ProductID string
}

func (e *SKUTakenError) Error() string {
	return fmt.Sprintf("SKU %q is taken by product %s", e.SKU, e.ProductID)
}

// Is reports whether target is ErrSKUTaken.
func (e *SKUTakenError) Is(target error) bool { return target == ErrSKUTaken }

// PreconditionError reports a conditional command on a product at another
// version.
type PreconditionError struct {
	ID       string
	Expected int64 // the version the command was conditional on
	Actual   int64 // the product's version; 0 when unknown
}

func (e *PreconditionError) Error() string {
	if e.Actual == 0 {
		return fmt.Sprintf("product %s is no longer at version %d", e.ID, e.Expected)
	}
	return fmt.Sprintf("product %s is at version %d, not %d", e.ID, e.Actual, e.Expected)
}

// Is reports whether target is ErrPreconditionFailed.
func (e *PreconditionError) Is(target error) bool { return target == ErrPreconditionFailed }

// NotCaughtUpError reports a read model behind the version a reader waited
// for.
type NotCaughtUpError struct {
	ID      string
	Want    int64
	Have    int64 // 0: the read model does not have the product yet
	Elapsed string
}

func (e *NotCaughtUpError) Error() string {
	return fmt.Sprintf("read model has product %s at version %d, not yet %d, after waiting %s; retry",
		e.ID, e.Have, e.Want, e.Elapsed)
}

// Is reports whether target is ErrNotCaughtUp.
func (e *NotCaughtUpError) Is(target error) bool { return target == ErrNotCaughtUp }

// GapError is returned by the products read model, when it has no event
// store to fill the gap from, for an event whose predecessor it has not
// applied yet. The handler retries it.
type GapError struct {
	ID   string
	Have int64 // the read model's version of the product; 0: none
	Got  int64 // the event's version
}

func (e *GapError) Error() string {
	return fmt.Sprintf("products read model: event version %d of product %s arrived before version %d", e.Got, e.ID, e.Have+1)
}
