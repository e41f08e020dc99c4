package handlertest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/memory"
)

// Run runs the suite. newHarness must return a fresh, empty, migrated
// store for each call; the suite calls it once per subtest.
func Run(t *testing.T, newHarness func(t testing.TB) Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"MarkProcessed", testMarkProcessed},
		{"MarkProcessedBatch", testMarkProcessedBatch},
		{"DeadLetterStore", testDeadLetterStore},
		{"PruneProcessedStore", testPruneProcessedStore},
		{"DuplicateSequential", testDuplicateSequential},
		{"DuplicateConcurrent", testDuplicateConcurrent},
		{"DuplicateThroughBroker", testDuplicateThroughBroker},
		{"FailTwiceThenSucceed", testFailTwiceThenSucceed},
		{"RetryThroughBroker", testRetryThroughBroker},
		{"PoisonMessage", testPoisonMessage},
		{"PermanentError", testPermanentError},
		{"NotAnEvent", testNotAnEvent},
		{"UndecodablePayload", testUndecodablePayload},
		{"Panic", testPanic},
		{"DatabaseDown", testDatabaseDown},
		{"DatabaseDownThroughBroker", testDatabaseDownThroughBroker},
		{"ReplayAfterRedelivery", testReplayAfterRedelivery},
		{"GiveUpHook", testGiveUpHook},
		{"Batch", testBatch},
		{"BatchWithBadMessage", testBatchWithBadMessage},
		{"BatchFunc", testBatchFunc},
		{"BatchDatabaseDown", testBatchDatabaseDown},
		{"Batcher", testBatcher},
		{"BatcherThroughBroker", testBatcherThroughBroker},
		{"Prune", testPrune},
		{"TransientNotCounted", testTransientNotCounted},
		{"UnknownEventTypeRetried", testUnknownEventTypeRetried},
		{"UnknownEventTypeDeadLettered", testUnknownEventTypeDeadLettered},
		{"NewerSchemaVersionRetried", testNewerSchemaVersionRetried},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newHarness(t))
		})
	}
}

func testMarkProcessed(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	db := h.Store.DB()
	id := event.NewID()
	mark := func(tx *sql.Tx, name string) bool {
		t.Helper()
		fresh, err := h.Store.MarkProcessed(ctx, tx, name, id)
		if err != nil {
			t.Fatalf("MarkProcessed(%s, %s): %v", name, id, err)
		}
		return fresh
	}
	begin := func() *sql.Tx {
		t.Helper()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}

	tx := begin()
	if !mark(tx, "a") {
		t.Fatal("first mark: got false, want true")
	}
	if mark(tx, "a") {
		t.Fatal("second mark in the same transaction: got true, want false")
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}

	tx = begin()
	if !mark(tx, "a") {
		t.Fatal("mark after a rolled-back mark: got false, want true")
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	tx = begin()
	if mark(tx, "a") {
		t.Error("mark after a committed mark: got true, want false")
	}
	if !mark(tx, "b") {
		t.Error("another handler's mark of the same event: got false, want true")
	}
	_ = tx.Rollback()
}

func testMarkProcessedBatch(t *testing.T, h Harness) {
	bm, ok := h.Store.(handler.BatchMarker)
	if !ok {
		t.Skip("the store does not implement handler.BatchMarker")
	}
	ctx := ctxFor(t)
	db := h.Store.DB()
	ids := make([]uuid.UUID, 1203) // more than one multi-row statement
	for i := range ids {
		ids[i] = event.NewID()
	}
	// Some are marked before, one of them by another handler.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 7, 600, 1202} {
		if _, err := h.Store.MarkProcessed(ctx, tx, "batch-marks", ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Store.MarkProcessed(ctx, tx, "someone-else", ids[1]); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	fresh, err := bm.MarkProcessedBatch(ctx, tx, "batch-marks", ids)
	if err != nil || len(fresh) != len(ids) {
		t.Fatalf("MarkProcessedBatch: %d results, %v; want %d", len(fresh), err, len(ids))
	}
	for i, f := range fresh {
		if want := i != 0 && i != 7 && i != 600 && i != 1202; f != want {
			t.Errorf("ids[%d]: new %v, want %v", i, f, want)
		}
	}
	if fresh, err := bm.MarkProcessedBatch(ctx, tx, "batch-marks", ids[:3]); err != nil || slices.Contains(fresh, true) {
		t.Errorf("marking again in the same transaction: %v, %v; want all false", fresh, err)
	}
	if fresh, err := bm.MarkProcessedBatch(ctx, tx, "batch-marks", nil); err != nil || len(fresh) != 0 {
		t.Errorf("MarkProcessedBatch(nil): %v, %v", fresh, err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if fresh, err := h.Store.MarkProcessed(ctx, tx, "batch-marks", ids[3]); err != nil || !fresh {
		t.Errorf("mark after a rolled-back batch: %v, %v; want new", fresh, err)
	}
}

func testDeadLetterStore(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	s := h.Store
	at := time.Date(2026, 11, 27, 10, 0, 0, 123456000, time.UTC)
	letters := []handler.DeadLetter{
		{Handler: "h1", EventID: event.NewID(), Topic: "product", Payload: []byte(`{"a":1}`),
			Headers: map[string]string{"Cqrs-Event-Type": "x", "traceparent": "tp"}, Error: "boom", Attempts: 3,
			FirstFailedAt: at, LastFailedAt: at.Add(time.Minute)},
		{Handler: "h2", EventID: event.NewID(), Payload: []byte{}, Error: "bad", Attempts: 1, FirstFailedAt: at, LastFailedAt: at},
		{Handler: "h1", EventID: event.NewID(), Payload: []byte("x"), Error: "worse", Attempts: 10, FirstFailedAt: at, LastFailedAt: at},
	}
	for _, l := range letters {
		if err := s.PutDeadLetter(ctx, l); err != nil {
			t.Fatalf("PutDeadLetter: %v", err)
		}
	}
	all, err := s.ListDeadLetters(ctx, "", 0, 10)
	if err != nil || len(all) != 3 {
		t.Fatalf("ListDeadLetters(all): %d, %v; want 3", len(all), err)
	}
	for i, got := range all {
		want := letters[i]
		if i > 0 && got.ID <= all[i-1].ID {
			t.Errorf("dead letters out of ID order: %d after %d", got.ID, all[i-1].ID)
		}
		if got.Handler != want.Handler || got.EventID != want.EventID || got.Topic != want.Topic ||
			string(got.Payload) != string(want.Payload) || got.Error != want.Error || got.Attempts != want.Attempts ||
			!maps.Equal(got.Headers, want.Headers) || !sameTime(got.FirstFailedAt, want.FirstFailedAt) ||
			!sameTime(got.LastFailedAt, want.LastFailedAt) {
			t.Errorf("dead letter %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
	h1, err := s.ListDeadLetters(ctx, "h1", 0, 10)
	if err != nil || len(h1) != 2 || h1[0].EventID != letters[0].EventID || h1[1].EventID != letters[2].EventID {
		t.Fatalf("ListDeadLetters(h1): %+v, %v", h1, err)
	}
	page, err := s.ListDeadLetters(ctx, "", all[0].ID, 1)
	if err != nil || len(page) != 1 || page[0].ID != all[1].ID {
		t.Fatalf("ListDeadLetters after %d, limit 1: %+v, %v", all[0].ID, page, err)
	}

	// Dead-lettering the same event again updates the row.
	again := letters[0]
	again.Error, again.Attempts, again.LastFailedAt = "boom again", 4, at.Add(time.Hour)
	again.FirstFailedAt = at.Add(time.Hour)
	if err := s.PutDeadLetter(ctx, again); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetDeadLetter(ctx, all[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Error != "boom again" || got.Attempts != 4 || !sameTime(got.LastFailedAt, at.Add(time.Hour)) ||
		!sameTime(got.FirstFailedAt, at) {
		t.Errorf("after a second PutDeadLetter: %+v; want error, attempts and last failure updated, first failure kept", got)
	}
	if n, _ := s.ListDeadLetters(ctx, "", 0, 10); len(n) != 3 {
		t.Errorf("a second PutDeadLetter of the same event added a row: %d dead letters", len(n))
	}

	if err := s.DeleteDeadLetter(ctx, all[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetDeadLetter(ctx, all[0].ID); !errors.Is(err, handler.ErrDeadLetterNotFound) {
		t.Errorf("GetDeadLetter after delete: %v; want ErrDeadLetterNotFound", err)
	}
	if err := s.DeleteDeadLetter(ctx, all[0].ID); !errors.Is(err, handler.ErrDeadLetterNotFound) {
		t.Errorf("DeleteDeadLetter twice: %v; want ErrDeadLetterNotFound", err)
	}
	if _, err := s.GetDeadLetter(ctx, 1<<40); !errors.Is(err, handler.ErrDeadLetterNotFound) {
		t.Errorf("GetDeadLetter(unknown): %v; want ErrDeadLetterNotFound", err)
	}
}

// sameTime compares times to the microsecond, PostgreSQL's resolution.
func sameTime(a, b time.Time) bool {
	return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
}

func testPruneProcessedStore(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	s := h.Store
	const old, young = 12_000, 10
	markAll := func(name string, n int) {
		tx, err := s.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		for range n {
			if _, err := s.MarkProcessed(ctx, tx, name, event.NewID()); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	markAll("pruned", old)
	markAll("other", 3)
	time.Sleep(10 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(10 * time.Millisecond)
	markAll("pruned", young)

	n, err := s.PruneProcessed(ctx, "pruned", cutoff)
	if err != nil || n != old {
		t.Fatalf("PruneProcessed: %d, %v; want %d", n, err, old)
	}
	n, err = s.PruneProcessed(ctx, "pruned", cutoff)
	if err != nil || n != 0 {
		t.Fatalf("PruneProcessed again: %d, %v; want 0", n, err)
	}
	n, err = s.PruneProcessed(ctx, "pruned", time.Now().Add(time.Hour))
	if err != nil || n != young {
		t.Fatalf("PruneProcessed of the rest: %d, %v; want %d", n, err, young)
	}
	n, err = s.PruneProcessed(ctx, "other", time.Now().Add(time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("PruneProcessed of another handler: %d, %v; want 3 (untouched before)", n, err)
	}
}

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

// txRecorder is a handler func that remembers which transactions it ran in.
type txRecorder struct {
	mu  sync.Mutex
	txs map[*sql.Tx]bool
}

func (r *txRecorder) record(tx *sql.Tx) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.txs == nil {
		r.txs = map[*sql.Tx]bool{}
	}
	r.txs[tx] = true
}

func (r *txRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.txs)
}

func testBatch(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Store.DB())
	var txs txRecorder
	var calls counter
	hd := newHandler(t, handler.Config{
		Name: "batch", Store: h.Store,
		Func: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			txs.record(tx)
			calls.add(e.ID)
			return rm.apply(ctx, tx, e)
		},
	})
	before := newEvent("before", 1, 1)
	if err := hd.Handle(ctx, delivery(before, 1)); err != nil {
		t.Fatal(err)
	}
	var ds []messagebus.Delivery
	var evs []event.Event
	for i := range 20 {
		e := newEvent(fmt.Sprint("s-", i), 1, 1)
		evs = append(evs, e)
		ds = append(ds, delivery(e, 1))
	}
	notAnEvent := messagebus.Delivery{Message: messagebus.Message{ID: "junk", Topic: topic, Payload: []byte("?")}, Attempt: 1}
	ds = append(ds, delivery(evs[3], 1), delivery(before, 2), notAnEvent) // duplicates inside the batch and of an earlier event
	txs = txRecorder{}

	errs := hd.HandleBatch(ctx, ds)
	if len(errs) != len(ds) {
		t.Fatalf("HandleBatch returned %d errors for %d deliveries", len(errs), len(ds))
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("delivery %d: %v", i, err)
		}
	}
	if got := txs.count(); got != 1 {
		t.Errorf("batch ran in %d transactions, want 1", got)
	}
	for _, e := range append(evs, before) {
		if got := rm.applied(t, e.StreamID); got != 1 || calls.get(e.ID) != 1 {
			t.Errorf("%s: applied %d times, func ran %d times; want 1, 1", e.StreamID, got, calls.get(e.ID))
		}
	}
	if dls := deadLetters(t, hd); len(dls) != 1 || dls[0].Headers[handler.HeaderMessageID] != "junk" {
		t.Errorf("dead letters: %+v, want the one that is not an event", dls)
	}
	// The whole batch again: all duplicates.
	for i, err := range hd.HandleBatch(ctx, ds[:20]) {
		if err != nil {
			t.Errorf("redelivered batch, delivery %d: %v", i, err)
		}
	}
	if got := rm.total(t); got != 21 {
		t.Errorf("after a redelivered batch: %d applied, want 21", got)
	}
	if errs := hd.HandleBatch(ctx, nil); len(errs) != 0 {
		t.Errorf("HandleBatch(nil) = %v", errs)
	}
}

func testBatchWithBadMessage(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Store.DB())
	var calls counter
	var sl sleeps
	var evs []event.Event
	for i := range 10 {
		evs = append(evs, newEvent(fmt.Sprint("s-", i), 1, 1))
	}
	poison, flaky := evs[4], evs[7]
	hd := newHandler(t, handler.Config{
		Name: "batch-bad", Store: h.Store, RetryPolicy: handler.RetryPolicy{MaxAttempts: 3}, Sleep: sl.sleep,
		Func: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			n := calls.add(e.ID)
			if err := rm.apply(ctx, tx, e); err != nil {
				return err
			}
			switch {
			case e.ID == poison.ID:
				return errors.New("poison")
			case e.ID == flaky.ID && n == 1:
				return errors.New("flaky")
			}
			return nil
		},
	})

	ds := make([]messagebus.Delivery, len(evs))
	for i, e := range evs {
		ds[i] = delivery(e, 1)
	}
	errs := hd.HandleBatch(ctx, ds)
	for i, err := range errs {
		if err != nil {
			t.Errorf("delivery %d: %v", i, err)
		}
	}
	for _, e := range evs {
		want := 1
		if e.ID == poison.ID {
			want = 0
		}
		if got := rm.applied(t, e.StreamID); got != want {
			t.Errorf("%s: applied %d times, want %d", e.StreamID, got, want)
		}
	}
	if got := calls.get(poison.ID); got != 3 {
		t.Errorf("poison tried %d times, want 3 (once in the batch, twice alone)", got)
	}
	if got := calls.get(flaky.ID); got != 2 {
		t.Errorf("flaky tried %d times, want 2", got)
	}
	// Only the failing messages waited: 2 waits for the poison one, 1 for
	// the flaky one; their neighbours were not held up.
	if got := len(sl.got()); got != 3 {
		t.Errorf("waits: %v, want 3", sl.got())
	}
	if dls := deadLetters(t, hd); len(dls) != 1 || dls[0].EventID != poison.ID || dls[0].Attempts != 3 {
		t.Errorf("dead letters: %+v, want the poison event's after 3 attempts", dls)
	}
}

func testBatchDatabaseDown(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Store.DB())
	f := newFlaky(t, h.Store)
	hd := newHandler(t, handler.Config{Name: "batch-down", Store: f, Func: rm.apply})
	var ds []messagebus.Delivery
	for i := range 5 {
		ds = append(ds, delivery(newEvent(fmt.Sprint("s-", i), 1, 1), 1))
	}
	for _, down := range []*atomic.Bool{&f.down, &f.markDown} {
		down.Store(true)
		for i, err := range hd.HandleBatch(ctx, ds) {
			if _, ok := messagebus.RetryDelay(err); !ok || !errors.Is(err, errRefused) {
				t.Errorf("delivery %d while the database is down: %v; want the database error with a retry delay", i, err)
			}
		}
		down.Store(false)
	}
	if rm.total(t) != 0 || len(deadLetters(t, hd)) != 0 {
		t.Fatalf("something was applied or dead-lettered while the database was down")
	}
	for i, err := range hd.HandleBatch(ctx, ds) {
		if err != nil {
			t.Errorf("delivery %d after the database came back: %v", i, err)
		}
	}
	if got := rm.total(t); got != 5 {
		t.Errorf("applied %d, want 5", got)
	}
}

func testBatcher(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Store.DB())
	var txs txRecorder
	first := make(chan struct{})
	var once sync.Once
	hd := newHandler(t, handler.Config{
		Name: "batcher", Store: h.Store,
		Func: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			txs.record(tx)
			// Hold the first batch so that the other callers queue up behind it.
			once.Do(func() { <-first })
			return rm.apply(ctx, tx, e)
		},
	})
	b, err := handler.NewBatcher(hd, handler.BatcherConfig{MaxBatch: 64})
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	var wg, started sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			e := newEvent(fmt.Sprint("s-", i), 1, 1)
			errs[i] = b.Handle(ctx, delivery(e, 1))
		}()
	}
	started.Wait()
	time.Sleep(50 * time.Millisecond)
	close(first)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	if got := rm.total(t); got != n {
		t.Errorf("applied %d, want %d", got, n)
	}
	t.Logf("%d deliveries committed in %d transactions", n, txs.count())
	if got := txs.count(); got >= n {
		t.Errorf("%d transactions for %d concurrent deliveries: no batching", got, n)
	}

	// A caller that gives up gets its context's error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Handle(cctx, delivery(newEvent("cancelled", 1, 1), 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("Handle with a cancelled context: %v", err)
	}
	if _, err := handler.NewBatcher(hd, handler.BatcherConfig{MaxBatch: -1, MaxWait: -1}); err == nil {
		t.Error("NewBatcher accepted negative settings")
	}
}

// testBatcherThroughBroker feeds one batcher from a subscription per topic;
// one message is poison.
func testBatcherThroughBroker(t *testing.T, h Harness) {
	rm := newReadModel(t, h.Store.DB())
	var txs txRecorder
	var poisonID atomic.Value
	policy := handler.RetryPolicy{InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, MaxAttempts: 3}
	hd := newHandler(t, handler.Config{
		Name: "batcher-broker", Store: h.Store, RetryPolicy: policy,
		Func: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			txs.record(tx)
			if e.ID == poisonID.Load() {
				return errors.New("poison")
			}
			return rm.apply(ctx, tx, e)
		},
	})
	b, err := handler.NewBatcher(hd, handler.BatcherConfig{MaxBatch: 16, MaxWait: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	bus := newBroker(t, memory.Config{})
	const topics, perTopic = 8, 25
	for i := range topics {
		subscribe(t, bus, fmt.Sprint("t", i), "batcher", b.Handle)
	}
	var poison event.Event
	for i := range topics {
		var msgs []messagebus.Message
		for j := range perTopic {
			e := newEvent(fmt.Sprintf("s-%d-%d", i, j), 1, 1)
			if i == 3 && j == 10 {
				poison = e
				poisonID.Store(e.ID)
			}
			msgs = append(msgs, envelope.Message(e, fmt.Sprint("t", i)))
		}
		publish(t, bus, msgs...)
	}
	eventually(t, "every good event applied", func() bool { return rm.total(t) == topics*perTopic-1 })
	eventually(t, "the poison message dead-lettered", func() bool { return len(deadLetters(t, hd)) == 1 })
	if dls := deadLetters(t, hd); dls[0].EventID != poison.ID {
		t.Errorf("dead letter %+v, want the poison event's", dls[0])
	}
	for i := range topics {
		for j := range perTopic {
			want := 1
			if i == 3 && j == 10 {
				want = 0
			}
			if got := rm.applied(t, fmt.Sprintf("s-%d-%d", i, j)); got != want {
				t.Errorf("s-%d-%d applied %d times, want %d", i, j, got, want)
			}
		}
	}
	t.Logf("%d events in %d transactions", topics*perTopic, txs.count())
}

func testPrune(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Store.DB())
	now := time.Now()
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	hd := newHandler(t, handler.Config{Name: "prune", Store: h.Store, Func: rm.apply,
		Clock: func() time.Time { return *clock.Load() }})
	var old, young []event.Event
	for i := range 3 {
		e := newEvent(fmt.Sprint("old-", i), 1, 1)
		old = append(old, e)
		if err := hd.Handle(ctx, delivery(e, 1)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(10 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(10 * time.Millisecond)
	for i := range 2 {
		e := newEvent(fmt.Sprint("young-", i), 1, 1)
		young = append(young, e)
		if err := hd.Handle(ctx, delivery(e, 1)); err != nil {
			t.Fatal(err)
		}
	}
	later := cutoff.Add(7 * 24 * time.Hour)
	clock.Store(&later)
	n, err := hd.Prune(ctx, 7*24*time.Hour)
	if err != nil || n != 3 {
		t.Fatalf("Prune: %d, %v; want 3", n, err)
	}
	// Within the retention the marks still de-duplicate; a pruned event
	// delivered again takes effect again, which is why the retention must
	// outlast every redelivery.
	for _, e := range append(young, old[0]) {
		if err := hd.Handle(ctx, delivery(e, 2)); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range young {
		if got := rm.applied(t, e.StreamID); got != 1 {
			t.Errorf("%s applied %d times after Prune, want 1", e.StreamID, got)
		}
	}
	if got := rm.applied(t, old[0].StreamID); got != 2 {
		t.Errorf("pruned %s redelivered: applied %d times; want 2 (its mark is gone)", old[0].StreamID, got)
	}
	if _, err := hd.Prune(ctx, 0); err == nil {
		t.Error("Prune(0) succeeded; want an error")
	}
}

// testBatchFunc: with Config.BatchFunc, HandleBatch calls it once with the new
// events only (duplicates and already-processed ones left out); when it
// fails, the events are handled one by one with the Func, so only the bad
// one is held back.
func testBatchFunc(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Store.DB())
	var evs []event.Event
	for i := range 8 {
		evs = append(evs, newEvent(fmt.Sprint("bf-", i), 1, 1))
	}
	poison := evs[5]
	var batchCalls, batchEvents atomic.Int64
	var poisoned atomic.Bool
	fn := func(ctx context.Context, tx *sql.Tx, e event.Event) error {
		if e.ID == poison.ID && poisoned.Load() {
			return errors.New("poison")
		}
		return rm.apply(ctx, tx, e)
	}
	hd := newHandler(t, handler.Config{
		Name: "batch-func", Store: h.Store, Func: fn, RetryPolicy: handler.RetryPolicy{MaxAttempts: 2},
		Sleep: func(context.Context, time.Duration) error { return nil },
		BatchFunc: func(ctx context.Context, tx *sql.Tx, batch []event.Event) error {
			batchCalls.Add(1)
			batchEvents.Add(int64(len(batch)))
			for _, e := range batch {
				if err := fn(ctx, tx, e); err != nil {
					return err
				}
			}
			return nil
		},
	})
	// First batch: events 0-3 plus a duplicate of event 0.
	first := []messagebus.Delivery{delivery(evs[0], 1), delivery(evs[1], 1), delivery(evs[2], 1), delivery(evs[3], 1), delivery(evs[0], 1)}
	for i, err := range hd.HandleBatch(ctx, first) {
		if err != nil {
			t.Errorf("first batch, delivery %d: %v", i, err)
		}
	}
	if batchCalls.Load() != 1 || batchEvents.Load() != 4 {
		t.Errorf("batch func called %d times with %d events, want once with the 4 distinct events", batchCalls.Load(), batchEvents.Load())
	}
	// Second batch: an already processed event, then 4-7 with a poison one.
	poisoned.Store(true)
	second := []messagebus.Delivery{delivery(evs[1], 2), delivery(evs[4], 1), delivery(evs[5], 1), delivery(evs[6], 1), delivery(evs[7], 1)}
	errs := hd.HandleBatch(ctx, second)
	for i, err := range errs {
		if err != nil {
			t.Errorf("second batch, delivery %d: %v", i, err)
		}
	}
	if batchEvents.Load() != 8 {
		t.Errorf("batch func saw %d events in all, want 8 (the processed one left out)", batchEvents.Load())
	}
	for _, e := range evs {
		want := 1
		if e.ID == poison.ID {
			want = 0
		}
		if got := rm.applied(t, e.StreamID); got != want {
			t.Errorf("%s: applied %d times, want %d", e.StreamID, got, want)
		}
	}
	if dls := deadLetters(t, hd); len(dls) != 1 || dls[0].EventID != poison.ID {
		t.Errorf("dead letters: %+v, want only the poison event", dls)
	}
}

// errReset is a network error, as a driver returns for a connection the
// server reset: the database's fault, never the event's.
var errReset = &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}

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
