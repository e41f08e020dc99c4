package handler

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"

	"github.com/cqrskit/cqrskit/event"
)

// TransientClassifier is implemented by stores that recognise their
// driver's transient errors: a serialization failure, a deadlock, a
// connection the server closed, a busy database. store/postgres and
// store/sqlite implement it. A Handler whose Store has it asks it about
// every Func error the generic checks (see IsTransient) do not settle.
type TransientClassifier interface {
	// IsTransient reports whether err is the database's passing fault,
	// not the event's: the same try may well succeed later.
	IsTransient(err error) bool
}

// IsTransient reports whether err is an infrastructure failure that says
// nothing about the event: a dead connection (driver.ErrBadConn,
// sql.ErrConnDone), a network error (net.Error), or a deadline that
// expired (context.DeadlineExceeded). A Handler also asks its Store when
// the Store implements TransientClassifier.
func IsTransient(err error) bool {
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne)
}

// kind sorts a Func error: the event's fault (counted towards MaxAttempts),
// the database's (transient), or an event type this binary does not know.
type kind int

const (
	kindFunc      kind = iota // the handler's own logic failed
	kindTransient             // the database failed: retried, never counted
	kindUnknown               // an unknown event type: retried unless configured
)

// classify says whose fault a Func error is. An error marked Permanent is
// always the handler's.
func (h *Handler) classify(err error) kind {
	if errors.Is(err, ErrPermanent) {
		return kindFunc
	}
	if IsTransient(err) {
		return kindTransient
	}
	if c, ok := h.store.(TransientClassifier); ok && c.IsTransient(err) {
		return kindTransient
	}
	if errors.Is(err, event.ErrUnknownEventType) && h.unknown == RetryUnknownEvents {
		return kindUnknown
	}
	return kindFunc
}

// UnknownEvents says what a Handler does with an event whose type (or
// schema version) this binary does not know: its Func fails with an error
// satisfying errors.Is(err, event.ErrUnknownEventType), as handler.For and
// event.Registry.Decode do. In a rolling deploy a newer producer emits
// such events before every consumer runs the newer code.
type UnknownEvents int

const (
	// RetryUnknownEvents, the default, retries the event with backoff (up
	// to MaxDelay between tries) without counting its tries towards
	// MaxAttempts, so it is neither dead-lettered nor skipped: it takes
	// effect once a binary that knows the type handles it. Its
	// subscription waits behind it meanwhile on brokers that redeliver in
	// place.
	RetryUnknownEvents UnknownEvents = iota
	// DeadLetterUnknownEvents dead-letters the event at once, like any
	// event that does not decode, for consumers that must not wait; replay
	// the dead letters after deploying the newer code.
	DeadLetterUnknownEvents
)
