package handlertest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/memory"
)

// testTransientNotCounted: through a broker, tries that fail for the
// database's fault use up no attempts: one event succeeds after many more
// of them than MaxAttempts, another still dead-letters after exactly
// MaxAttempts failures of its own.
func testTransientNotCounted(t *testing.T, h Harness) {
	rm := newReadModel(t, h.Store.DB())
	var calls, logic counter
	ok, buggy := newEvent("ok", 1, 1), newEvent("buggy", 1, 1)
	const transient = 6
	policy := handler.RetryPolicy{InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, MaxAttempts: 2, InProcess: 2}
	hd := newHandler(t, handler.Config{
		Name: "transient", Store: h.Store, RetryPolicy: policy,
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
		Func: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			if calls.add(e.ID) <= transient {
				return fmt.Errorf("write read model: %w", errReset)
			}
			if e.ID == buggy.ID {
				logic.add(e.ID)
				return errors.New("the handler's own bug")
			}
			return rm.apply(ctx, tx, e)
		},
	})
	bus := newBroker(t, memory.Config{})
	subscribe(t, bus, topic, "transient", hd.Handle)
	publish(t, bus, message(ok), message(buggy))
	eventually(t, "the good event applied and the buggy one dead-lettered", func() bool {
		return rm.applied(t, "ok") == 1 && len(deadLetters(t, hd)) == 1
	})
	if got := calls.get(ok.ID); got != transient+1 {
		t.Errorf("good event: %d tries, want %d", got, transient+1)
	}
	if got := logic.get(buggy.ID); got != policy.MaxAttempts {
		t.Errorf("buggy event: its own error %d times, want MaxAttempts = %d", got, policy.MaxAttempts)
	}
	dls := deadLetters(t, hd)
	if dls[0].EventID != buggy.ID || dls[0].Attempts != policy.MaxAttempts || dls[0].Error != "the handler's own bug" {
		t.Errorf("dead letter %+v; want the buggy event's after %d attempts", dls[0], policy.MaxAttempts)
	}
}

type unknownV1 struct{ N int }

// decodeAll is a Func that handles every type of its registry, as a
// consumer of a whole stream does.
func decodeAll(reg *event.Registry, rm *readModel) handler.Func {
	return func(ctx context.Context, tx *sql.Tx, e event.Event) error {
		if _, err := reg.Decode(e); err != nil {
			return err
		}
		return rm.apply(ctx, tx, e)
	}
}

// testUnknownEventTypeRetried: a newer producer emits a type this
// consumer's registry lacks (a rolling deploy). By default the event is
// retried, neither dead-lettered nor skipped, far beyond MaxAttempts, and
// takes effect once a binary that knows it handles it.
func testUnknownEventTypeRetried(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Store.DB())
	reg := event.NewRegistry(nil)
	policy := handler.RetryPolicy{InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, MaxAttempts: 2, InProcess: 2}
	hd := newHandler(t, handler.Config{
		Name: "unknown-retry", Store: h.Store, Func: decodeAll(reg, rm), RetryPolicy: policy,
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
	})
	e := newEvent("s", 1, 1) // type test.added, not registered
	for attempt := 1; attempt <= 10; attempt++ {
		err := hd.Handle(ctx, delivery(e, attempt))
		if _, ok := messagebus.RetryDelay(err); !ok || !errors.Is(err, event.ErrUnknownEventType) {
			t.Fatalf("delivery %d of an unknown type: %v; want it handed back with a retry delay", attempt, err)
		}
	}
	if dls := deadLetters(t, hd); len(dls) != 0 {
		t.Fatalf("dead letters %+v; want none by default", dls)
	}
	if got := rm.applied(t, "s"); got != 0 {
		t.Fatalf("applied %d times before the type was known", got)
	}
	// The newer binary knows the type.
	if err := event.Register[unknownV1](reg, e.Type); err != nil {
		t.Fatal(err)
	}
	if err := hd.Handle(ctx, delivery(e, 11)); err != nil {
		t.Fatalf("delivery once the type is known: %v", err)
	}
	if got := rm.applied(t, "s"); got != 1 {
		t.Errorf("applied %d times, want 1", got)
	}
	if dls := deadLetters(t, hd); len(dls) != 0 {
		t.Errorf("dead letters %+v; want none", dls)
	}
}

// testUnknownEventTypeDeadLettered: with Config.UnknownEvents = DeadLetterUnknownEvents
// the event is dead-lettered at once.
func testUnknownEventTypeDeadLettered(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Store.DB())
	reg := event.NewRegistry(nil)
	hd := newHandler(t, handler.Config{Name: "unknown-dl", Store: h.Store, Func: decodeAll(reg, rm),
		UnknownEvents: handler.DeadLetterUnknownEvents})
	e := newEvent("s", 1, 1)
	if err := hd.Handle(ctx, delivery(e, 1)); err != nil {
		t.Fatalf("Handle: %v; want nil (dead-lettered)", err)
	}
	dls := deadLetters(t, hd)
	if len(dls) != 1 || dls[0].EventID != e.ID || dls[0].Attempts != 1 || !strings.Contains(dls[0].Error, "not registered") {
		t.Errorf("dead letters %+v; want the unknown event's after 1 attempt", dls)
	}
	bad := handler.Config{Name: "bad-option", Store: h.Store, Func: rm.apply, UnknownEvents: 7}
	if _, err := handler.Idempotent(bad); err == nil ||
		!strings.Contains(err.Error(), "Config.UnknownEvents = 7") {
		t.Errorf("Idempotent with Config.UnknownEvents 7: %v; want an error naming it", err)
	}
}

// testNewerSchemaVersionRetried: handler.For meets an event of its type at
// a schema version newer than its registry's: retried by default, not
// dead-lettered.
func testNewerSchemaVersionRetried(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Store.DB())
	reg := event.NewRegistry(nil)
	if err := event.Register[unknownV1](reg, "test.added"); err != nil {
		t.Fatal(err)
	}
	fn, err := handler.For(reg, func(ctx context.Context, tx *sql.Tx, e event.Event, _ unknownV1) error {
		return rm.apply(ctx, tx, e)
	})
	if err != nil {
		t.Fatal(err)
	}
	policy := handler.RetryPolicy{MaxAttempts: 1, InProcess: 1}
	hd := newHandler(t, handler.Config{Name: "newer-schema", Store: h.Store, Func: fn, RetryPolicy: policy})
	e := newEvent("s", 1, 1)
	e.SchemaVersion = 2
	for attempt := 1; attempt <= 3; attempt++ {
		err := hd.Handle(ctx, delivery(e, attempt))
		if _, ok := messagebus.RetryDelay(err); !ok || !errors.Is(err, event.ErrUnknownEventType) {
			t.Fatalf("delivery %d of schema version 2: %v; want it handed back with a retry delay", attempt, err)
		}
	}
	if dls := deadLetters(t, hd); len(dls) != 0 {
		t.Errorf("dead letters %+v; want none", dls)
	}
	dl := newHandler(t, handler.Config{
		Name: "newer-schema-dl", Store: h.Store, RetryPolicy: policy, UnknownEvents: handler.DeadLetterUnknownEvents, Func: fn,
	})
	if err := dl.Handle(ctx, delivery(e, 1)); err != nil {
		t.Fatalf("Handle with DeadLetterUnknownEvents: %v; want nil (dead-lettered)", err)
	}
	if dls := deadLetters(t, dl); len(dls) != 1 || !strings.Contains(dls[0].Error, "newer than this binary") {
		t.Errorf("dead letters %+v; want one naming the newer schema version", dls)
	}
	if got := rm.applied(t, "s"); got != 0 {
		t.Errorf("applied %d times, want 0", got)
	}
}
