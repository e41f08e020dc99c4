package eventtest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/event"
)

func testOutbox(t *testing.T, h Harness) {
	if h.Outbox == nil {
		t.Skip("store writes no outbox")
	}
	ctx := ctxFor(t)
	res := mustAppend(t, h.Store, stream(t), event.NoStream, events(3)...)
	res2 := mustAppend(t, h.Store, stream(t), event.NoStream, events(2)...)
	recs, err := h.Outbox.Pending(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []uuid.UUID
	for i, r := range recs {
		got = append(got, r.Event.ID)
		if i > 0 && recs[i-1].ID >= r.ID {
			t.Errorf("outbox records out of ID order: %d then %d", recs[i-1].ID, r.ID)
		}
		if r.Event.StreamID == "" || r.Event.Type == "" || r.Event.Data == nil || r.Event.Version == 0 {
			t.Errorf("outbox record %d lacks event fields: %+v", r.ID, r.Event)
		}
	}
	var want []uuid.UUID
	for _, e := range append(res.Events, res2.Events...) {
		want = append(want, e.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("outbox holds %v, want one record per event %v", got, want)
	}
	stats, err := h.Outbox.Stats(ctx)
	if err != nil || stats.Backlog != 5 || stats.OldestAt.IsZero() {
		t.Errorf("Stats = %+v, %v; want backlog 5 with an oldest time", stats, err)
	}
	if err := h.Outbox.Delete(ctx, []int64{recs[0].ID, recs[1].ID}); err != nil {
		t.Fatal(err)
	}
	recs, err = h.Outbox.Pending(ctx, 2)
	if err != nil || len(recs) != 2 || recs[0].Event.ID != want[2] {
		t.Errorf("after delete Pending(2) = %d records, %v; want the 3rd and 4th", len(recs), err)
	}
	// A duplicate append writes no second outbox row.
	mustAppend(t, h.Store, res.Events[0].StreamID, event.Any, res.Events[2])
	if stats, _ := h.Outbox.Stats(ctx); stats.Backlog != 3 {
		t.Errorf("backlog after a duplicate append = %d, want 3", stats.Backlog)
	}
}

func testTx(t *testing.T, h Harness) {
	ts, ok := h.Store.(event.TxStore)
	if !ok {
		t.Skip("store has no transactions")
	}
	ctx := ctxFor(t)
	st := stream(t)

	tx, err := ts.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.AppendTx(ctx, tx, st, event.NoStream, events(2)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if _, err := load(t, ts, st, 1); !errors.Is(err, event.ErrStreamNotFound) {
		t.Errorf("after rollback load = %v, want ErrStreamNotFound", err)
	}
	if h.Outbox != nil {
		if s, _ := h.Outbox.Stats(ctx); s.Backlog != 0 {
			t.Errorf("after rollback the outbox holds %d rows, want 0", s.Backlog)
		}
	}
	// The stream can still be created after the rolled-back attempt.
	tx, err = ts.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.AppendTx(ctx, tx, st, event.NoStream, events(2)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := mustLoad(t, ts, st, 1); len(got) != 2 {
		t.Errorf("after commit: %d events, want 2", len(got))
	}
	if h.Outbox != nil {
		if s, _ := h.Outbox.Stats(ctx); s.Backlog != 2 {
			t.Errorf("after commit the outbox holds %d rows, want 2", s.Backlog)
		}
	}
	// A conflict inside a transaction leaves the caller's transaction usable
	// for rollback and stores nothing.
	tx, err = ts.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ts.AppendTx(ctx, tx, st, event.Exactly(1), events(1))
	_ = tx.Rollback()
	if !errors.Is(err, event.ErrConcurrencyConflict) {
		t.Errorf("AppendTx with a stale version: %v, want a conflict", err)
	}
}

// testCatchUpReader runs writers that commit in random order with random
// delays while a reader follows the global log; the reader must see every
// event exactly once, in cursor order.
func testCatchUpReader(t *testing.T, h Harness) {
	writers, perWriter := 4, 25
	if h.OutOfOrderCommits {
		writers, perWriter = 16, 60
	}
	if testing.Short() {
		perWriter = 10
	}
	ctx := ctxFor(t)
	ts, hasTx := h.Store.(event.TxStore)

	appendOne := func(w, i int) (uuid.UUID, error) {
		st := fmt.Sprintf("test-catchup-%d-%d", w, rand.IntN(4))
		e := newEvent("test.catchup", i)
		delay := time.Duration(rand.IntN(3000)) * time.Microsecond
		if !hasTx {
			time.Sleep(delay)
			_, err := h.Store.Append(ctx, st, event.Any, []event.Event{e})
			return e.ID, err
		}
		tx, err := ts.DB().BeginTx(ctx, nil)
		if err != nil {
			return uuid.Nil, err
		}
		defer tx.Rollback() //nolint:errcheck // no-op after commit
		if _, err := ts.AppendTx(ctx, tx, st, event.Any, []event.Event{e}); err != nil {
			return uuid.Nil, err
		}
		time.Sleep(delay) // hold the transaction open so later positions commit first
		return e.ID, tx.Commit()
	}

	var (
		mu      sync.Mutex
		written = map[uuid.UUID]bool{}
		wg      sync.WaitGroup
		errs    = make(chan error, writers)
	)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				id, err := appendOne(w, i)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				written[id] = true
				mu.Unlock()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	seen := map[uuid.UUID]bool{}
	var cur event.Cursor
	read := func() {
		page, err := h.Store.ReadAll(ctx, cur, 7)
		if err != nil {
			t.Fatalf("catch-up read after %+v: %v", cur, err)
		}
		for _, e := range page {
			if seen[e.ID] {
				t.Fatalf("catch-up reader saw event %s twice", e.ID)
			}
			if !cur.Less(e.Cursor()) {
				t.Fatalf("catch-up reader went backwards: %+v after %+v", e.Cursor(), cur)
			}
			seen[e.ID] = true
			cur = e.Cursor()
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			read()
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Drain what committed after the last read. In PostgreSQL an unrelated
	// open transaction elsewhere in the cluster can hold the read horizon
	// back for a moment, so allow some time.
	for deadline := time.Now().Add(20 * time.Second); len(seen) < len(written) && time.Now().Before(deadline); {
		before := len(seen)
		read()
		if len(seen) == before {
			time.Sleep(10 * time.Millisecond)
		}
	}
	for id := range written {
		if !seen[id] {
			t.Errorf("catch-up reader skipped event %s", id)
		}
	}
	if len(seen) != len(written) {
		t.Errorf("reader saw %d events, writers committed %d", len(seen), len(written))
	}
}

// testGlobalStreamOrder: a transaction that started writing early (and so
// holds an older transaction id) appends to a stream after a younger
// transaction appended to it and committed. The global log must still list
// the stream's events in version order.
func testGlobalStreamOrder(t *testing.T, h Harness) {
	ts, ok := h.Store.(event.TxStore)
	if !ok || !h.OutOfOrderCommits {
		t.Skip("store commits one writer at a time")
	}
	ctx := ctxFor(t)
	st := stream(t)
	old, err := ts.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Rollback() //nolint:errcheck // no-op after commit
	if _, err := ts.AppendTx(ctx, old, stream(t), event.NoStream, events(1)); err != nil {
		t.Fatal(err)
	}
	first := mustAppend(t, ts, st, event.NoStream, events(1)...)
	second, err := ts.AppendTx(ctx, old, st, event.Exactly(1), events(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Commit(); err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, e := range readAll(t, ts, 100) {
		if e.StreamID == st {
			got = append(got, e.Version)
		}
	}
	if !slices.Equal(got, []int64{1, 2}) {
		t.Errorf("global log lists stream %s as versions %v (v1 %+v, v2 %+v), want [1 2]",
			st, got, first.Events[0].Cursor(), second.Events[0].Cursor())
	}
}
