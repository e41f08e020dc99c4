package handlertest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/memory"
)

func testDuplicateSequential(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Store.DB())
	var calls counter
	hd := newHandler(t, handler.Config{
		Name: "dup-seq", Store: h.Store,
		Func: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			calls.add(e.ID)
			return rm.apply(ctx, tx, e)
		},
	})
	e := newEvent("s-1", 1, 5)
	for attempt := 1; attempt <= 5; attempt++ {
		if err := hd.Handle(ctx, delivery(e, attempt)); err != nil {
			t.Fatalf("delivery %d: %v", attempt, err)
		}
	}
	if got := rm.applied(t, "s-1"); got != 1 {
		t.Errorf("read model changed %d times, want 1", got)
	}
	if got := calls.get(e.ID); got != 1 {
		t.Errorf("handler func ran %d times, want 1", got)
	}
}

func testDuplicateConcurrent(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Store.DB())
	hd := newHandler(t, handler.Config{Name: "dup-conc", Store: h.Store, Func: rm.apply})
	for round := range 3 {
		e := newEvent(fmt.Sprint("s-", round), 1, 1)
		start := make(chan struct{})
		errs := make(chan error, 5)
		for i := range 5 {
			go func() {
				<-start
				errs <- hd.Handle(ctx, delivery(e, i+1))
			}()
		}
		close(start)
		for range 5 {
			if err := <-errs; err != nil {
				t.Errorf("concurrent delivery: %v", err)
			}
		}
		if got := rm.applied(t, e.StreamID); got != 1 {
			t.Errorf("round %d: read model changed %d times, want 1", round, got)
		}
	}
}

// testDuplicateThroughBroker publishes every event five times to a broker
// that does not de-duplicate (as Kafka redelivers).
func testDuplicateThroughBroker(t *testing.T, h Harness) {
	rm := newReadModel(t, h.Store.DB())
	hd := newHandler(t, handler.Config{Name: "dup-broker", Store: h.Store, Func: rm.apply})
	bus := newBroker(t, memory.Config{DuplicateWindow: time.Nanosecond})
	events := make([]event.Event, 10)
	for i := range events {
		events[i] = newEvent(fmt.Sprint("s-", i), 1, 1)
	}
	var delivered atomic.Int64
	subscribe(t, bus, topic, "dup-broker", func(ctx context.Context, d messagebus.Delivery) error {
		err := hd.Handle(ctx, d)
		if err == nil {
			delivered.Add(1)
		}
		return err
	})
	for range 5 { // one call each: the broker de-duplicates within a call
		for _, e := range events {
			publish(t, bus, message(e))
		}
	}
	eventually(t, "50 deliveries", func() bool { return delivered.Load() == 50 })
	for i := range 10 {
		if got := rm.applied(t, fmt.Sprint("s-", i)); got != 1 {
			t.Errorf("stream s-%d: applied %d times, want 1", i, got)
		}
	}
}

func testFailTwiceThenSucceed(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Store.DB())
	var calls counter
	var sl sleeps
	policy := handler.RetryPolicy{InitialDelay: 100 * time.Millisecond, Multiplier: 2, Jitter: 0.2}
	hd := newHandler(t, handler.Config{
		Name: "fail-twice", Store: h.Store, RetryPolicy: policy, Sleep: sl.sleep,
		Func: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			if calls.add(e.ID) <= 2 {
				// Write first: the failed try's write must be rolled back.
				if err := rm.apply(ctx, tx, e); err != nil {
					return err
				}
				return errors.New("transient failure")
			}
			return rm.apply(ctx, tx, e)
		},
	})

	e := newEvent("s-1", 1, 7)
	if err := hd.Handle(ctx, delivery(e, 1)); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if got := calls.get(e.ID); got != 3 {
		t.Errorf("attempts: %d, want 3", got)
	}
	waits := sl.got()
	if len(waits) != 2 {
		t.Fatalf("backoff waits: %v, want 2", waits)
	}
	checkDelay(t, "first wait", waits[0], 100*time.Millisecond, 0.2)
	checkDelay(t, "second wait", waits[1], 200*time.Millisecond, 0.2)
	if got := rm.applied(t, "s-1"); got != 1 {
		t.Errorf("read model changed %d times, want 1", got)
	}
	if dl := deadLetters(t, hd); len(dl) != 0 {
		t.Errorf("dead letters: %+v, want none", dl)
	}
}

func checkDelay(t *testing.T, what string, got, base time.Duration, jitter float64) {
	t.Helper()
	lo := time.Duration(float64(base) * (1 - jitter))
	hi := time.Duration(float64(base) * (1 + jitter))
	if got < lo || got > hi {
		t.Errorf("%s: %s, want within [%s, %s]", what, got, lo, hi)
	}
}

// testRetryThroughBroker: one try per delivery, so the broker redelivers
// with the handler's backoff delay.
func testRetryThroughBroker(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Store.DB())
	var calls counter
	var sl sleeps
	policy := handler.RetryPolicy{InitialDelay: 20 * time.Millisecond, Multiplier: 3, Jitter: -1, InProcess: 1, MaxAttempts: 5}
	hd := newHandler(t, handler.Config{
		Name: "retry-broker", Store: h.Store, RetryPolicy: policy, Sleep: sl.sleep,
		Func: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			if calls.add(e.ID) <= 2 {
				return errors.New("transient failure")
			}
			return rm.apply(ctx, tx, e)
		},
	})

	// Directly: each failed delivery asks for the next backoff delay.
	e := newEvent("direct", 1, 1)
	for attempt, want := range []time.Duration{20 * time.Millisecond, 60 * time.Millisecond} {
		err := hd.Handle(ctx, delivery(e, attempt+1))
		d, ok := messagebus.RetryDelay(err)
		if err == nil || !ok || d != want {
			t.Fatalf("delivery %d: %v (retry delay %s, %v); want a failure asking for %s", attempt+1, err, d, ok, want)
		}
	}
	if err := hd.Handle(ctx, delivery(e, 3)); err != nil {
		t.Fatalf("delivery 3: %v", err)
	}

	// Through a broker.
	bus := newBroker(t, memory.Config{RetryDelay: time.Hour})
	var mu sync.Mutex
	var attempts []int
	var times []time.Time
	subscribe(t, bus, topic, "retry-broker", func(ctx context.Context, d messagebus.Delivery) error {
		mu.Lock()
		attempts = append(attempts, d.Attempt)
		times = append(times, time.Now())
		mu.Unlock()
		return hd.Handle(ctx, d)
	})
	e2 := newEvent("broker", 1, 1)
	publish(t, bus, message(e2))
	eventually(t, "the event applied", func() bool { return rm.applied(t, "broker") == 1 })
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(attempts, []int{1, 2, 3}) {
		t.Errorf("delivery attempts: %v, want [1 2 3]", attempts)
	}
	if len(times) == 3 && (times[1].Sub(times[0]) < 20*time.Millisecond || times[2].Sub(times[1]) < 60*time.Millisecond) {
		t.Errorf("redeliveries came after %s and %s; want at least the backoff delays 20ms and 60ms",
			times[1].Sub(times[0]), times[2].Sub(times[1]))
	}
	if len(sl.got()) != 0 {
		t.Errorf("in-process waits %v with InProcess 1, want none", sl.got())
	}
	if got := rm.applied(t, "direct"); got != 1 {
		t.Errorf("direct: applied %d times, want 1", got)
	}
}

func testPoisonMessage(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Store.DB())
	var calls counter
	var broken atomic.Bool
	broken.Store(true)
	var sl sleeps
	e1, poison, e3 := newEvent("s", 1, 1), newEvent("s", 2, 10), newEvent("s", 3, 100)
	policy := handler.RetryPolicy{InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, MaxAttempts: 4, InProcess: 2}
	hd := newHandler(t, handler.Config{
		Name: "poison", Store: h.Store, RetryPolicy: policy, Sleep: sl.sleep,
		Func: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			calls.add(e.ID)
			if e.ID == poison.ID && broken.Load() {
				return errors.New("cannot handle this one")
			}
			return rm.apply(ctx, tx, e)
		},
	})

	bus := newBroker(t, memory.Config{})
	subscribe(t, bus, topic, "poison", hd.Handle)
	publish(t, bus, message(e1), message(poison), message(e3))
	eventually(t, "the message after the poison one", func() bool { return rm.applied(t, "s") == 2 })

	if got := calls.get(poison.ID); got != 4 {
		t.Errorf("poison message tried %d times, want MaxAttempts = 4", got)
	}
	if got := len(sl.got()); got != 2 {
		t.Errorf("in-process waits: %d, want 2 (one per delivery of 2 tries)", got)
	}
	dls := deadLetters(t, hd)
	if len(dls) != 1 {
		t.Fatalf("dead letters: %+v, want 1", dls)
	}
	dl := dls[0]
	if dl.EventID != poison.ID || dl.Handler != "poison" || dl.Topic != topic || dl.Attempts != 4 ||
		string(dl.Payload) != string(poison.Data) || !strings.Contains(dl.Error, "cannot handle this one") ||
		dl.Headers[envelope.HeaderEventType] != poison.Type || dl.Headers[event.HeaderCorrelationID] != "corr-s" ||
		dl.FirstFailedAt.IsZero() || dl.LastFailedAt.Before(dl.FirstFailedAt) {
		t.Errorf("dead letter: %+v", dl)
	}
	if got, err := hd.DeadLetters().Get(ctx, dl.ID); err != nil || got.EventID != poison.ID {
		t.Errorf("Get(%d): %+v, %v", dl.ID, got, err)
	}

	// Replaying while still broken keeps the dead letter, with one attempt
	// more.
	if err := hd.DeadLetters().Replay(ctx, dl.ID); err == nil || !strings.Contains(err.Error(), "cannot handle this one") {
		t.Fatalf("Replay while broken: %v, want the handler's error", err)
	}
	if got, err := hd.DeadLetters().Get(ctx, dl.ID); err != nil || got.Attempts != 5 {
		t.Errorf("dead letter after a failed replay: %+v, %v; want 5 attempts", got, err)
	}

	// Fixed: the replay applies it once and deletes the dead letter.
	broken.Store(false)
	if err := hd.DeadLetters().Replay(ctx, dl.ID); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if got := rm.applied(t, "s"); got != 3 {
		t.Errorf("after replay: %d events applied, want 3", got)
	}
	if err := hd.DeadLetters().Replay(ctx, dl.ID); !errors.Is(err, handler.ErrDeadLetterNotFound) {
		t.Errorf("second Replay: %v, want ErrDeadLetterNotFound", err)
	}
	// A late redelivery of the replayed event is a duplicate.
	if err := hd.Handle(ctx, delivery(poison, 9)); err != nil {
		t.Fatal(err)
	}
	if got := rm.applied(t, "s"); got != 3 {
		t.Errorf("after a redelivery of the replayed event: %d applied, want 3", got)
	}
	if dls := deadLetters(t, hd); len(dls) != 0 {
		t.Errorf("dead letters after replay: %+v", dls)
	}
}

func testPermanentError(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	var calls counter
	var sl sleeps
	cause := errors.New("price must not be negative")
	hd := newHandler(t, handler.Config{
		Name: "permanent", Store: h.Store, Sleep: sl.sleep,
		Func: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			calls.add(e.ID)
			return fmt.Errorf("apply: %w", handler.Permanent(cause))
		},
	})
	e := newEvent("s", 1, 1)
	if err := hd.Handle(ctx, delivery(e, 1)); err != nil {
		t.Fatalf("Handle: %v; want nil (dead-lettered and acknowledged)", err)
	}
	if got := calls.get(e.ID); got != 1 {
		t.Errorf("tries: %d, want 1", got)
	}
	if len(sl.got()) != 0 {
		t.Errorf("waits %v, want none", sl.got())
	}
	dls := deadLetters(t, hd)
	if len(dls) != 1 || dls[0].Attempts != 1 || !strings.Contains(dls[0].Error, cause.Error()) {
		t.Errorf("dead letters: %+v", dls)
	}
}

func testNotAnEvent(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	var calls atomic.Int64
	var sl sleeps
	hd := newHandler(t, handler.Config{
		Name: "not-an-event", Store: h.Store, Sleep: sl.sleep,
		Func: func(context.Context, *sql.Tx, event.Event) error {
			calls.Add(1)
			return nil
		},
	})

	bad := []messagebus.Message{
		{ID: "order-17", Topic: topic, Key: "k", Payload: []byte("garbage"), Headers: map[string]string{"x": "y"}},
		{ID: event.NewID().String(), Topic: topic, Payload: []byte("{}")}, // no event type
	}
	for _, m := range bad {
		if err := hd.Handle(ctx, messagebus.Delivery{Message: m, Attempt: 1}); err != nil {
			t.Fatalf("Handle(%s): %v; want nil (dead-lettered)", m.ID, err)
		}
	}
	if calls.Load() != 0 || len(sl.got()) != 0 {
		t.Errorf("handler func ran %d times and waited %v; want neither", calls.Load(), sl.got())
	}
	dls := deadLetters(t, hd)
	if len(dls) != 2 {
		t.Fatalf("dead letters: %+v, want 2", dls)
	}
	for _, dl := range dls {
		if !strings.Contains(dl.Error, "not an event") || !strings.Contains(dl.Error, "decode") {
			t.Errorf("dead letter error %q, want the decode error", dl.Error)
		}
	}
	if dls[0].Headers[handler.HeaderMessageID] != "order-17" || string(dls[0].Payload) != "garbage" {
		t.Errorf("dead letter of a message with a non-UUID ID: %+v", dls[0])
	}
	if m := dls[0].Message(); m.ID != "order-17" || !maps.Equal(m.Headers, bad[0].Headers) {
		t.Errorf("DeadLetter.Message: %+v, want the original message", m)
	}
	// The same message again updates its dead letter.
	if err := hd.Handle(ctx, messagebus.Delivery{Message: bad[0], Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if n := len(deadLetters(t, hd)); n != 2 {
		t.Errorf("dead letters after a redelivery: %d, want 2", n)
	}
	// It cannot be replayed; it can be discarded.
	if err := hd.DeadLetters().Replay(ctx, dls[0].ID); !errors.Is(err, event.ErrDecode) {
		t.Errorf("Replay of a message that is not an event: %v, want ErrDecode", err)
	}
	if err := hd.DeadLetters().Discard(ctx, dls[0].ID); err != nil {
		t.Fatal(err)
	}
	if n := len(deadLetters(t, hd)); n != 1 {
		t.Errorf("dead letters after Discard: %d, want 1", n)
	}
	if err := hd.DeadLetters().Discard(ctx, dls[0].ID); !errors.Is(err, handler.ErrDeadLetterNotFound) {
		t.Errorf("second Discard: %v, want ErrDeadLetterNotFound", err)
	}
}

type added struct {
	N int `json:"n"`
}

func testUndecodablePayload(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Store.DB())
	reg := event.NewRegistry(nil)
	if err := event.Register[added](reg, "test.added"); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	fn, err := handler.For(reg, func(ctx context.Context, tx *sql.Tx, e event.Event, a added) error {
		calls.Add(1)
		return rm.apply(ctx, tx, e)
	})
	if err != nil {
		t.Fatal(err)
	}
	var sl sleeps
	hd := newHandler(t, handler.Config{Name: "undecodable", Store: h.Store, Func: fn, Sleep: sl.sleep})

	good := newEvent("good", 1, 3)
	bad := newEvent("bad", 1, 0)
	bad.Data = []byte(`{"n": "three"}`)
	other := newEvent("other", 1, 0)
	other.Type = "test.other" // not this handler's type: skipped
	for _, e := range []event.Event{good, bad, other} {
		if err := hd.Handle(ctx, delivery(e, 1)); err != nil {
			t.Fatalf("Handle(%s): %v", e.StreamID, err)
		}
	}
	if calls.Load() != 1 || rm.applied(t, "good") != 1 {
		t.Errorf("typed func ran %d times, good applied %d times; want 1, 1", calls.Load(), rm.applied(t, "good"))
	}
	if len(sl.got()) != 0 {
		t.Errorf("waits %v: a decode error must not be retried", sl.got())
	}
	dls := deadLetters(t, hd)
	if len(dls) != 1 || dls[0].EventID != bad.ID || dls[0].Attempts != 1 || !strings.Contains(dls[0].Error, "decode") {
		t.Errorf("dead letters: %+v; want the bad event's, with its decode error", dls)
	}
}

func testPanic(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Store.DB())
	var calls counter
	var sl sleeps
	always := newEvent("always", 1, 1)
	hd := newHandler(t, handler.Config{
		Name: "panic", Store: h.Store, RetryPolicy: handler.RetryPolicy{MaxAttempts: 3}, Sleep: sl.sleep,
		Func: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			if n := calls.add(e.ID); n == 1 || e.ID == always.ID {
				panic(fmt.Sprintf("nil map somewhere (try %d)", n))
			}
			return rm.apply(ctx, tx, e)
		},
	})

	once := newEvent("once", 1, 1)
	if err := hd.Handle(ctx, delivery(once, 1)); err != nil {
		t.Fatalf("Handle after a panic: %v", err)
	}
	if calls.get(once.ID) != 2 || rm.applied(t, "once") != 1 {
		t.Errorf("a panic then a success: %d tries, applied %d; want 2, 1", calls.get(once.ID), rm.applied(t, "once"))
	}
	if err := hd.Handle(ctx, delivery(always, 1)); err != nil {
		t.Fatalf("Handle of a message that always panics: %v; want nil (dead-lettered)", err)
	}
	dls := deadLetters(t, hd)
	if len(dls) != 1 || dls[0].Attempts != 3 || !strings.Contains(dls[0].Error, "panicked") {
		t.Errorf("dead letters: %+v; want one after 3 panicking tries", dls)
	}
}
