package app

import (
	"errors"
	"fmt"

	"github.com/cqrskit/cqrskit/es"
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

// NotFoundError names the product that was not found. It satisfies
// errors.Is(err, ErrNotFound).
type NotFoundError struct {
	ID string
	// NotAnID is set when ID is not a product ID at all (not a UUID).
	NotAnID bool
}

func (e *NotFoundError) Error() string {
	if e.NotAnID {
		return fmt.Sprintf("product %q not found: product IDs are UUIDs", e.ID)
	}
	return fmt.Sprintf("product %s not found", e.ID)
}

// Is reports whether target is ErrNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// VersionNotFoundError reports a version a product has not reached. It
// satisfies errors.Is(err, es.ErrVersionNotFound).
type VersionNotFoundError struct {
	ID   string
	Want int64 // the version asked for
	Have int64 // the product's version; 0 when unknown
}

func (e *VersionNotFoundError) Error() string {
	if e.Have == 0 {
		return fmt.Sprintf("product %s has no version %d", e.ID, e.Want)
	}
	return fmt.Sprintf("product %s has no version %d: it is at version %d", e.ID, e.Want, e.Have)
}

// Is reports whether target is es.ErrVersionNotFound.
func (e *VersionNotFoundError) Is(target error) bool { return target == es.ErrVersionNotFound }

// NotReadyError is what HandlerConfig.Ready returns when the process cannot
// serve: /readyz shows Reason, a phrase for the operator's dashboard
// ("database unreachable"), and logs Err, the detail (addresses and all).
type NotReadyError struct {
	Reason string
	Err    error // may be nil
}

func (e *NotReadyError) Error() string {
	if e.Err == nil {
		return "not ready: " + e.Reason
	}
	return "not ready: " + e.Reason + ": " + e.Err.Error()
}

func (e *NotReadyError) Unwrap() error { return e.Err }

// SKUTakenError names the SKU and the product holding it.
type SKUTakenError struct {
	SKU       string
	ProductID string
}

func (e *SKUTakenError) Error() string {
	return fmt.Sprintf("SKU %q is taken by product %s (SKUs are unique regardless of case)", e.SKU, e.ProductID)
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
