package handlertest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/memory"
)

func testDatabaseDown(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Store.DB())
	f := newFlaky(t, h.Store)
	var calls atomic.Int64
	broken := newEvent("broken", 1, 1)
	hd := newHandler(t, handler.Config{
		Name: "db-down", Store: f, RetryPolicy: handler.RetryPolicy{MaxAttempts: 1},
		Func: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			calls.Add(1)
			if e.ID == broken.ID {
				return errors.New("always fails")
			}
			return rm.apply(ctx, tx, e)
		},
	})

	e := newEvent("s", 1, 1)
	expectRetry := func(what string, err error) {
		t.Helper()
		if _, ok := messagebus.RetryDelay(err); err == nil || !ok || !errors.Is(err, errRefused) {
			t.Errorf("%s: %v; want the database error with a retry delay (no ack)", what, err)
		}
	}
	// BeginTx fails.
	f.down.Store(true)
	for attempt := 1; attempt <= 3; attempt++ {
		expectRetry(fmt.Sprint("delivery ", attempt, " while the database is down"), hd.Handle(ctx, delivery(e, attempt)))
	}
	// MaxAttempts is 1, but a database failure never dead-letters.
	expectRetry("the broken event while the database is down", hd.Handle(ctx, delivery(broken, 5)))
	f.down.Store(false)
	if calls.Load() != 0 {
		t.Errorf("handler func ran %d times without a database", calls.Load())
	}
	if dls := deadLetters(t, hd); len(dls) != 0 {
		t.Fatalf("dead letters while the database was down: %+v", dls)
	}

	// MarkProcessed fails.
	f.markDown.Store(true)
	expectRetry("delivery while marks fail", hd.Handle(ctx, delivery(e, 4)))
	f.markDown.Store(false)

	// The dead letter cannot be stored: the message is not acknowledged.
	f.dlDown.Store(true)
	expectRetry("dead-lettering while the database is down", hd.Handle(ctx, delivery(broken, 6)))
	f.dlDown.Store(false)
	if dls := deadLetters(t, hd); len(dls) != 0 {
		t.Fatalf("dead letters: %+v", dls)
	}

	// Back: both messages are handled.
	if err := hd.Handle(ctx, delivery(e, 5)); err != nil {
		t.Fatalf("delivery after the database came back: %v", err)
	}
	if err := hd.Handle(ctx, delivery(broken, 7)); err != nil {
		t.Fatalf("dead-lettering after the database came back: %v", err)
	}
	if got := rm.applied(t, "s"); got != 1 {
		t.Errorf("applied %d times, want 1", got)
	}
	if dls := deadLetters(t, hd); len(dls) != 1 || dls[0].EventID != broken.ID {
		t.Errorf("dead letters: %+v, want the broken event's", dls)
	}
}

func testDatabaseDownThroughBroker(t *testing.T, h Harness) {
	rm := newReadModel(t, h.Store.DB())
	f := newFlaky(t, h.Store)
	f.down.Store(true)
	policy := handler.RetryPolicy{InitialDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, MaxAttempts: 2, InProcess: 1}
	hd := newHandler(t, handler.Config{Name: "db-down-broker", Store: f, Func: rm.apply, RetryPolicy: policy})
	bus := newBroker(t, memory.Config{})
	var failures atomic.Int64
	subscribe(t, bus, topic, "db-down-broker", func(ctx context.Context, d messagebus.Delivery) error {
		err := hd.Handle(ctx, d)
		if err != nil {
			failures.Add(1)
		}
		return err
	})
	var msgs []messagebus.Message
	for i := range 5 {
		msgs = append(msgs, message(newEvent(fmt.Sprint("s-", i), 1, 1)))
	}
	publish(t, bus, msgs...)
	// Far more deliveries than MaxAttempts while the database is away.
	eventually(t, "failed deliveries", func() bool { return failures.Load() >= 10 })
	f.down.Store(false)
	eventually(t, "all events applied", func() bool { return rm.total(t) == 5 })
	for i := range 5 {
		if got := rm.applied(t, fmt.Sprint("s-", i)); got != 1 {
			t.Errorf("s-%d applied %d times, want 1", i, got)
		}
	}
	if dls := deadLetters(t, hd); len(dls) != 0 {
		t.Errorf("dead letters: %+v, want none", dls)
	}
}

// testReplayAfterRedelivery: an event dead-lettered and later handled from a
// redelivery is not applied again by a replay.
func testReplayAfterRedelivery(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Store.DB())
	var broken atomic.Bool
	broken.Store(true)
	hd := newHandler(t, handler.Config{
		Name: "replay-late", Store: h.Store,
		Func: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			if broken.Load() {
				return handler.Permanent(errors.New("not yet"))
			}
			return rm.apply(ctx, tx, e)
		},
	})
	e := newEvent("s", 1, 1)
	if err := hd.Handle(ctx, delivery(e, 1)); err != nil {
		t.Fatal(err)
	}
	dls := deadLetters(t, hd)
	if len(dls) != 1 {
		t.Fatalf("dead letters: %+v", dls)
	}
	broken.Store(false)
	if err := hd.Handle(ctx, delivery(e, 2)); err != nil {
		t.Fatal(err)
	}
	if err := hd.DeadLetters().Replay(ctx, dls[0].ID); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if got := rm.applied(t, "s"); got != 1 {
		t.Errorf("applied %d times, want 1", got)
	}
	if n := len(deadLetters(t, hd)); n != 0 {
		t.Errorf("%d dead letters after replay, want 0", n)
	}
	// Another handler's dead letters are not this one's.
	other := newHandler(t, handler.Config{Name: "replay-other", Store: h.Store, Func: rm.apply})
	if err := other.DeadLetters().Discard(ctx, dls[0].ID); !errors.Is(err, handler.ErrDeadLetterNotFound) {
		t.Errorf("Discard of another handler's dead letter: %v, want ErrDeadLetterNotFound", err)
	}
}

// testGiveUpHook: when the subscription's max deliveries run out first, the
// give-up hook dead-letters the message.
func testGiveUpHook(t *testing.T, h Harness) {
	rm := newReadModel(t, h.Store.DB())
	poison := newEvent("p", 1, 1)
	policy := handler.RetryPolicy{InitialDelay: time.Millisecond, MaxAttempts: 100, InProcess: 1}
	hd := newHandler(t, handler.Config{
		Name: "give-up", Store: h.Store, RetryPolicy: policy,
		Func: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			if e.ID == poison.ID {
				return errors.New("never works")
			}
			return rm.apply(ctx, tx, e)
		},
	})
	bus := newBroker(t, memory.Config{})
	subscribe(t, bus, topic, "give-up", hd.Handle, messagebus.WithMaxDeliveries(3), messagebus.WithGiveUp(hd.GiveUp))
	publish(t, bus, message(poison), message(newEvent("after", 1, 1)))
	eventually(t, "the message after the poison one", func() bool { return rm.applied(t, "after") == 1 })
	dls := deadLetters(t, hd)
	if len(dls) != 1 || dls[0].EventID != poison.ID || !strings.Contains(dls[0].Error, "never works") {
		t.Errorf("dead letters: %+v", dls)
	}
}
