package handler

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/cqrskit/cqrskit/event"
)

// For adapts a function of one event type to a Func. Events registered in
// reg under T's name are decoded (older schema versions upcast) and passed
// to fn with their payload; events of other types are skipped: they are
// marked handled and nothing else happens. A payload that does not decode
// fails with an *event.DecodeError, which sends the event straight to the
// dead letters; but an event of T's name with a schema version newer than
// the registered one (a newer producer in a rolling deploy) fails with one
// that also satisfies errors.Is(err, event.ErrUnknownEventType), which the
// handler retries unless Config.UnknownEvents says otherwise.
//
// It fails if T is not registered in reg.
func For[T any](reg *event.Registry, fn func(ctx context.Context, tx *sql.Tx, e event.Event, data T) error) (Func, error) {
	var zero T
	if reg == nil || fn == nil {
		return nil, fmt.Errorf("handler.For[%T]: a registry and a function are required", zero)
	}
	name, _, err := reg.Name(zero)
	if err != nil {
		return nil, fmt.Errorf("handler.For[%T]: %w", zero, err)
	}
	return func(ctx context.Context, tx *sql.Tx, e event.Event) error {
		if e.Type != name {
			return nil
		}
		if _, current, err := reg.Name(zero); err == nil && e.SchemaVersion > current {
			return &event.DecodeError{EventID: e.ID.String(), Stream: e.StreamID, Version: e.Version,
				Type: e.Type, SchemaVersion: e.SchemaVersion,
				Err: fmt.Errorf("%w: schema version %d is newer than this binary's %d; deploy the newer code",
					event.ErrUnknownEventType, e.SchemaVersion, current)}
		}
		v, err := reg.Decode(e)
		if err != nil {
			return err
		}
		data, ok := v.(T)
		if !ok {
			return &event.DecodeError{EventID: e.ID.String(), Stream: e.StreamID, Version: e.Version,
				Type: e.Type, SchemaVersion: e.SchemaVersion, Err: fmt.Errorf("decoded %T, want %T", v, zero)}
		}
		return fn(ctx, tx, e, data)
	}, nil
}
