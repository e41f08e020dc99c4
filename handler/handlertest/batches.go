package handlertest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
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
