package es

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/google/uuid"
)

// Aggregate is implemented by a struct that embeds Base and applies its
// events:
//
//	type Account struct {
//		es.Base
//		Balance int64
//	}
//
//	func (a *Account) Apply(data any) error {
//		switch e := data.(type) {
//		case Deposited:
//			a.Balance += e.Amount
//		default:
//			return fmt.Errorf("account: unexpected event %T", data)
//		}
//		return nil
//	}
//
// Root is promoted from the embedded Base; use a pointer type (*Account) as
// the aggregate.
//
// Apply changes state and nothing else: it runs both when a command raises
// an event (Raise) and when past events are replayed on load, so it must not
// check business rules, read clocks or call out. Commands check their rules
// first, then Raise. An error from Apply during replay fails the load.
type Aggregate interface {
	// Root returns the embedded Base.
	Root() *Base
	// Apply changes the aggregate's state by one event payload.
	Apply(data any) error
}

// Base is the identity and bookkeeping every aggregate embeds: its ID, the
// stream version it was loaded at, and the events raised since.
//
// Its fields are unexported, so they are not part of a JSON snapshot of the
// aggregate; the repository restores them itself.
type Base struct {
	id      string
	version int64
	// snapshotVersion is the version of the latest snapshot known to exist
	// (loaded or taken), 0 when none; the snapshot policy compares against it.
	snapshotVersion int64
	pending         []pendingEvent
	// stale marks state that is not the stream's: a save whose events the
	// store skipped as already stored applied them a second time.
	stale bool
}

type pendingEvent struct {
	data  any
	id    uuid.UUID
	extra map[string]string
}

// Root returns b. It makes any struct embedding Base satisfy the first half
// of Aggregate.
func (b *Base) Root() *Base { return b }

// ID returns the aggregate's ID, without the stream type prefix.
func (b *Base) ID() string { return b.id }

// SetID sets the ID of a new aggregate before its first save. The
// repository sets it on load; changing the ID of a loaded aggregate makes
// its next save target another stream.
func (b *Base) SetID(id string) { b.id = id }

// Version returns the stream version of the last stored event the aggregate
// includes: 0 for a new aggregate, the loaded version after a load, the new
// version after a save. Events raised since are not counted.
func (b *Base) Version() int64 { return b.version }

// Uncommitted returns the payloads raised since the last load or save, in
// order. The slice is a copy; the payloads are not.
func (b *Base) Uncommitted() []any {
	out := make([]any, len(b.pending))
	for i, p := range b.pending {
		out[i] = p.data
	}
	return out
}

// RaiseOption sets a detail of one raised event: WithEventID, WithExtra.
type RaiseOption struct{ set func(*pendingEvent) }

// WithEventID gives the event a fixed ID instead of a new UUIDv7. A command
// that derives its event IDs from its own ID becomes idempotent: the store
// skips an event whose ID is already stored, so a retried command appends
// nothing twice.
func WithEventID(id uuid.UUID) RaiseOption {
	return RaiseOption{func(p *pendingEvent) { p.id = id }}
}

// WithExtra adds a user metadata key to this event only, on top of the
// metadata carried by the save's context (see WithMetadata).
func WithExtra(key, value string) RaiseOption {
	return RaiseOption{func(p *pendingEvent) {
		if p.extra == nil {
			p.extra = map[string]string{}
		}
		p.extra[key] = value
	}}
}

// Raise applies data to a and, only if Apply succeeds, records it as an
// uncommitted event for the next save. Apply's error is returned as is.
//
// Apply should fail before it changes anything: Raise records nothing on
// error but cannot undo a half-applied change.
func Raise(a Aggregate, data any, opts ...RaiseOption) error {
	root, err := rootOf(a)
	if err != nil {
		return err
	}
	if data == nil {
		return errors.New("es: raise: event payload must not be nil")
	}
	if err := a.Apply(data); err != nil {
		return err
	}
	p := pendingEvent{data: data}
	for _, opt := range opts {
		if opt.set != nil {
			opt.set(&p)
		}
	}
	root.pending = append(root.pending, p)
	return nil
}

// Replay applies past events to a as if they had been loaded from its
// stream: each payload goes to Apply and advances the version by one;
// nothing is recorded as uncommitted. The repository replays this way; it
// is exported for tests (see testutil.Given) and for aggregates rebuilt
// from other sources.
func Replay(a Aggregate, events ...any) error {
	root, err := rootOf(a)
	if err != nil {
		return err
	}
	for i, data := range events {
		if data == nil {
			return fmt.Errorf("es: replay: event %d: payload must not be nil", i)
		}
		if err := a.Apply(data); err != nil {
			return fmt.Errorf("es: replay event %d (%T) at version %d: %w", i, data, root.version+1, err)
		}
		root.version++
	}
	return nil
}

// rootOf returns a's Base, or an error instead of a nil-pointer panic when a
// is nil or does not embed a Base.
func rootOf(a Aggregate) (*Base, error) {
	if isNil(a) {
		return nil, errors.New("es: aggregate is nil")
	}
	root := a.Root()
	if root == nil {
		return nil, fmt.Errorf("es: aggregate %T has a nil Base (embed es.Base by value)", a)
	}
	return root, nil
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface, reflect.Func, reflect.Chan:
		return rv.IsNil()
	}
	return false
}
