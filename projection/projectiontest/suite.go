package projectiontest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/projection"
)

// Run runs the suite. newHarness must return a fresh, empty, migrated
// store for each call; the suite calls it once per subtest.
func Run(t *testing.T, newHarness func(t testing.TB) Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"Checkpoints", testCheckpoints},
		{"CheckpointLocked", testCheckpointLocked},
		{"Counter", testCounter},
		{"CatchUp", testCatchUp},
		{"ConcurrentWritersAndRunners", testConcurrentWriters},
		{"RebuildOverExistingHistory", testRebuildNew},
		{"ApplyFails", testApplyFails},
		{"ApplyPanics", testApplyPanics},
		{"WokenByNotifier", testNotifier},
		{"IdleRunnerSeesExternalReset", testIdleReset},
		{"ApplyBatch", testApplyBatch},
		{"ApplyBatchFallsBackToApply", testApplyBatchFallback},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newHarness(t))
		})
	}
}

func inTx(t testing.TB, db *sql.DB, fn func(tx *sql.Tx) error) {
	t.Helper()
	tx, err := db.BeginTx(ctxFor(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func testCheckpoints(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	cs := h.Checkpoints
	get := func(name string) event.Cursor {
		t.Helper()
		var c event.Cursor
		inTx(t, cs.DB(), func(tx *sql.Tx) (err error) {
			c, err = cs.Checkpoint(ctx, tx, name)
			return err
		})
		return c
	}
	if c := get("p"); c != (event.Cursor{}) {
		t.Fatalf("checkpoint of a new projection: %+v, want zero", c)
	}
	want := event.Cursor{TxID: 77, Position: 1234}
	inTx(t, cs.DB(), func(tx *sql.Tx) error { return cs.SaveCheckpoint(ctx, tx, "p", want) })
	if c := get("p"); c != want {
		t.Fatalf("checkpoint after save: %+v, want %+v", c, want)
	}
	if c := get("q"); c != (event.Cursor{}) {
		t.Errorf("another projection's checkpoint: %+v, want zero", c)
	}

	// A rolled-back save is not kept.
	tx, err := cs.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.SaveCheckpoint(ctx, tx, "p", event.Cursor{Position: 9999}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if c := get("p"); c != want {
		t.Errorf("checkpoint after a rolled-back save: %+v, want %+v", c, want)
	}

	inTx(t, cs.DB(), func(tx *sql.Tx) error { return cs.DeleteCheckpoint(ctx, tx, "p") })
	if c := get("p"); c != (event.Cursor{}) {
		t.Errorf("checkpoint after delete: %+v, want zero", c)
	}
	inTx(t, cs.DB(), func(tx *sql.Tx) error { return cs.DeleteCheckpoint(ctx, tx, "never-saved") })
}

// testCheckpointLocked: a second transaction reading the checkpoint while
// the first holds it sees the first one's save, never the value before.
func testCheckpointLocked(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	cs := h.Checkpoints
	for _, existing := range []bool{false, true} {
		name := fmt.Sprint("lock-", existing)
		if existing {
			inTx(t, cs.DB(), func(tx *sql.Tx) error { return cs.SaveCheckpoint(ctx, tx, name, event.Cursor{Position: 1}) })
		}
		tx1, err := cs.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		first, err := cs.Checkpoint(ctx, tx1, name)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan event.Cursor, 1)
		errc := make(chan error, 1)
		go func() {
			tx2, err := cs.DB().BeginTx(ctx, nil)
			if err != nil {
				errc <- err
				return
			}
			defer tx2.Rollback()
			c, err := cs.Checkpoint(ctx, tx2, name)
			if err != nil {
				errc <- err
				return
			}
			got <- c
		}()
		// Give the second runner time to read too early, if it can.
		time.Sleep(50 * time.Millisecond)
		saved := event.Cursor{TxID: first.TxID, Position: first.Position + 500}
		if err := cs.SaveCheckpoint(ctx, tx1, name, saved); err != nil {
			t.Fatal(err)
		}
		if err := tx1.Commit(); err != nil {
			t.Fatal(err)
		}
		select {
		case c := <-got:
			if c != saved {
				t.Errorf("existing checkpoint %v: the second runner read %+v while the first held the checkpoint; want %+v (it must wait)",
					existing, c, saved)
			}
		case err := <-errc:
			t.Fatal(err)
		}
	}
}

func counterOf(h Harness) projection.Counter {
	if c, ok := h.Events.(projection.Counter); ok {
		return c
	}
	c, _ := h.Checkpoints.(projection.Counter)
	return c
}

func testCounter(t *testing.T, h Harness) {
	c := counterOf(h)
	if c == nil {
		t.Skip("the store does not implement projection.Counter")
	}
	ctx := ctxFor(t)
	if n, err := c.CountEvents(ctx, event.Cursor{}); err != nil || n != 0 {
		t.Fatalf("CountEvents of an empty log: %d, %v", n, err)
	}
	appendEvents(t, h.Events, "a", 30, 7)
	appendEvents(t, h.Events, "b", 12, 12)
	page, err := h.Events.ReadAll(ctx, event.Cursor{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.CountEvents(ctx, event.Cursor{}); err != nil || n != 42 {
		t.Errorf("CountEvents from zero: %d, %v; want 42", n, err)
	}
	if n, err := c.CountEvents(ctx, page[9].Cursor()); err != nil || n != 32 {
		t.Errorf("CountEvents after the 10th event: %d, %v; want 32", n, err)
	}
}

func testCatchUp(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Checkpoints.DB(), "projectiontest_catchup")
	for i := range 10 {
		appendEvents(t, h.Events, fmt.Sprint("s-", i), 100+i*3, 37)
	}
	p := newProjection(t, projection.Config{Name: "catchup", Events: h.Events, Checkpoints: h.Checkpoints,
		Apply: rm.apply, BatchSize: 100})
	n, err := p.CatchUp(ctx)
	if err != nil || n != 1135 {
		t.Fatalf("CatchUp: %d, %v; want 1135", n, err)
	}
	if d := diff(rm.rows(t), replay(t, h.Events)); d != "" {
		t.Fatalf("read model differs from a replay: %s", d)
	}
	if n, err := p.CatchUp(ctx); err != nil || n != 0 {
		t.Errorf("second CatchUp: %d, %v; want 0", n, err)
	}
	st, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := lastCursor(t, h.Events)
	if st.Name != "catchup" || st.Checkpoint != last || st.Running || st.LastError != nil {
		t.Errorf("Status: %+v; want checkpoint %+v", st, last)
	}
	if counterOf(h) != nil && st.Lag != 0 {
		t.Errorf("Status.Lag %d, want 0", st.Lag)
	}
	appendEvents(t, h.Events, "late", 5, 5)
	if st, err := p.Status(ctx); err != nil || counterOf(h) != nil && st.Lag != 5 {
		t.Errorf("Status after 5 more events: %+v, %v; want lag 5", st, err)
	}
	// A new Projection value continues from the stored checkpoint.
	p2 := newProjection(t, projection.Config{Name: "catchup", Events: h.Events, Checkpoints: h.Checkpoints, Apply: rm.apply})
	if n, err := p2.CatchUp(ctx); err != nil || n != 5 {
		t.Errorf("CatchUp of a second Projection: %d, %v; want 5", n, err)
	}
}

func lastCursor(t testing.TB, s event.Store) event.Cursor {
	t.Helper()
	var cur event.Cursor
	for {
		page, err := s.ReadAll(ctxFor(t), cur, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return cur
		}
		cur = page[len(page)-1].Cursor()
	}
}

// testConcurrentWriters: 16 writers commit events in random order with
// random delays while two runners of one projection compete; the read
// model must end equal to a replay of the whole log, and a rebuild must
// give the same read model.
func testConcurrentWriters(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Checkpoints.DB(), "projectiontest_concurrent")
	cfg := projection.Config{Name: "concurrent", Events: h.Events, Checkpoints: h.Checkpoints, Apply: rm.apply,
		BatchSize: 50, PollInterval: 5 * time.Millisecond}
	runners := []*projection.Projection{newProjection(t, cfg), newProjection(t, cfg)}
	runCtx, stop := context.WithCancel(ctx)
	var running sync.WaitGroup
	for _, p := range runners {
		running.Go(func() {
			if err := p.Run(runCtx); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}

	const writers, perWriter, streams = 16, 40, 24
	var wg sync.WaitGroup
	var appended atomic.Int64
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for i := range perWriter {
				stream := fmt.Sprint("s-", rng.IntN(streams))
				evs := make([]event.Event, 1+rng.IntN(3))
				for j := range evs {
					evs[j] = event.Event{ID: event.NewID(), StreamType: "test", Type: "test.happened",
						Data: fmt.Appendf(nil, `{"w":%d,"i":%d,"j":%d}`, w, i, j)}
				}
				delay := time.Duration(rng.IntN(2000)) * time.Microsecond
				if err := appendSlowly(ctx, h.Events, stream, evs, delay); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				appended.Add(int64(len(evs)))
			}
		})
	}
	wg.Wait()
	want := replay(t, h.Events)
	eventually(t, fmt.Sprintf("the read model to catch up with %d events", appended.Load()), func() bool {
		return rm.total(t) >= appended.Load()
	})
	stop()
	running.Wait()
	if d := diff(rm.rows(t), want); d != "" {
		t.Fatalf("read model differs from a replay of the log: %s", d)
	}
	for i, p := range runners {
		if st, err := p.Status(ctx); err != nil || st.LastError != nil || st.Running {
			t.Errorf("runner %d: Status %+v, %v", i, st, err)
		}
	}

	// Rebuild: the same read model again, with progress.
	var progress []projection.Progress
	err := runners[0].Rebuild(ctx, rm.reset, func(p projection.Progress) { progress = append(progress, p) })
	if err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	if d := diff(rm.rows(t), want); d != "" {
		t.Fatalf("rebuilt read model differs from a replay of the log: %s", d)
	}
	checkProgress(t, h, progress, appended.Load())
}

// appendSlowly appends evs, holding the transaction open for delay before
// it commits when the store takes the caller's transaction, so that
// commits come out of position order where the store allows it.
func appendSlowly(ctx context.Context, s event.Store, stream string, evs []event.Event, delay time.Duration) error {
	ts, ok := s.(event.TxStore)
	if !ok {
		time.Sleep(delay)
		_, err := s.Append(ctx, stream, event.Any, evs)
		return err
	}
	tx, err := ts.DB().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := ts.AppendTx(ctx, tx, stream, event.Any, evs); err != nil {
		return err
	}
	time.Sleep(delay)
	if err := tx.Commit(); err != nil {
		return err
	}
	ts.Committed()
	return nil
}

func checkProgress(t *testing.T, h Harness, progress []projection.Progress, total int64) {
	t.Helper()
	if len(progress) < 2 {
		t.Fatalf("progress reported %d times, want a start and at least one batch", len(progress))
	}
	if p := progress[0]; p.Done != 0 {
		t.Errorf("first progress report: %+v, want Done 0", p)
	}
	for i := 1; i < len(progress); i++ {
		if progress[i].Done < progress[i-1].Done || progress[i].Elapsed < progress[i-1].Elapsed {
			t.Errorf("progress went backwards: %+v after %+v", progress[i], progress[i-1])
		}
	}
	last := progress[len(progress)-1]
	wantTotal := total
	if counterOf(h) == nil {
		wantTotal = -1
	}
	if last.Done != total || last.Total != wantTotal || last.Elapsed <= 0 || last.Rate <= 0 {
		t.Errorf("last progress report: %+v; want Done %d, Total %d, a rate and the elapsed time", last, total, wantTotal)
	}
}

// testRebuildNew builds a new projection over history written before it
// existed.
func testRebuildNew(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	for i := range 5 {
		appendEvents(t, h.Events, fmt.Sprint("old-", i), 200, 100)
	}
	rm := newReadModel(t, h.Checkpoints.DB(), "projectiontest_new")
	p := newProjection(t, projection.Config{Name: "new", Events: h.Events, Checkpoints: h.Checkpoints, Apply: rm.apply, BatchSize: 64})
	var progress []projection.Progress
	if err := p.Rebuild(ctx, nil, func(pr projection.Progress) { progress = append(progress, pr) }); err != nil {
		t.Fatal(err)
	}
	if d := diff(rm.rows(t), replay(t, h.Events)); d != "" {
		t.Fatalf("read model differs from a replay: %s", d)
	}
	checkProgress(t, h, progress, 1000)
	if len(progress) != 1+(1000+63)/64 {
		t.Errorf("progress reported %d times, want once at the start and once per batch (%d)", len(progress), 1+(1000+63)/64)
	}
	// A rebuild whose reset fails changes nothing.
	resetErr := errors.New("cannot truncate")
	err := p.Rebuild(ctx, func(context.Context, *sql.Tx) error { return resetErr }, nil)
	if !errors.Is(err, resetErr) {
		t.Fatalf("Rebuild with a failing reset: %v", err)
	}
	if st, err := p.Status(ctx); err != nil || st.Checkpoint != lastCursor(t, h.Events) {
		t.Errorf("checkpoint after a failed reset: %+v, %v; want it kept", st, err)
	}
}

func testApplyFails(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Checkpoints.DB(), "projectiontest_fails")
	appendEvents(t, h.Events, "s", 100, 100)
	all, err := h.Events.ReadAll(ctx, event.Cursor{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	bad := all[57]
	var broken atomic.Bool
	broken.Store(true)
	p := newProjection(t, projection.Config{Name: "fails", Events: h.Events, Checkpoints: h.Checkpoints, BatchSize: 40,
		Apply: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			if err := rm.apply(ctx, tx, e); err != nil {
				return err
			}
			if e.ID == bad.ID && broken.Load() {
				return errors.New("cannot apply this one")
			}
			return nil
		}})
	n, err := p.CatchUp(ctx)
	if err == nil || !strings.Contains(err.Error(), "cannot apply this one") || !strings.Contains(err.Error(), bad.ID.String()) {
		t.Fatalf("CatchUp: %v; want the apply error naming the event", err)
	}
	if n != 57 {
		t.Errorf("CatchUp applied %d events, want the 57 before the failing one", n)
	}
	if r := rm.rows(t)["s"]; r.N != 57 || r.LastVersion != 57 {
		t.Errorf("read model: %+v; want the first 57 events applied", r)
	}
	if st, err := p.Status(ctx); err != nil || st.Checkpoint != all[56].Cursor() {
		t.Errorf("Status: %+v, %v; want the checkpoint after the last good event", st, err)
	}
	// Again: it stops at the same event.
	if n, err := p.CatchUp(ctx); err == nil || n != 0 {
		t.Errorf("CatchUp again: %d, %v; want 0 and the error", n, err)
	}
	broken.Store(false)
	if n, err := p.CatchUp(ctx); err != nil || n != 43 {
		t.Fatalf("CatchUp after the fix: %d, %v; want 43", n, err)
	}
	if d := diff(rm.rows(t), replay(t, h.Events)); d != "" {
		t.Fatalf("read model differs from a replay: %s", d)
	}
}

func testApplyPanics(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	appendEvents(t, h.Events, "s", 3, 3)
	var panics atomic.Int64
	p := newProjection(t, projection.Config{Name: "panics", Events: h.Events, Checkpoints: h.Checkpoints,
		Apply: func(context.Context, *sql.Tx, event.Event) error {
			if panics.Add(1) == 1 {
				panic("index out of range")
			}
			return nil
		}})
	if _, err := p.CatchUp(ctx); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("CatchUp with a panicking Apply: %v; want an error", err)
	}
	if n, err := p.CatchUp(ctx); err != nil || n != 3 {
		t.Fatalf("CatchUp after the panic: %d, %v; want 3", n, err)
	}
}

// testNotifier: with polling all but off, the store's notifier alone must
// wake the projection.
func testNotifier(t *testing.T, h Harness) {
	if _, ok := h.Events.(projection.Notifier); !ok {
		t.Skip("the event store does not implement projection.Notifier")
	}
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Checkpoints.DB(), "projectiontest_notify")
	p := newProjection(t, projection.Config{Name: "notify", Events: h.Events, Checkpoints: h.Checkpoints,
		Apply: rm.apply, PollInterval: time.Hour})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	defer func() {
		stop()
		<-done
	}()
	eventually(t, "Run to start", func() bool { st, _ := p.Status(ctx); return st.Running })
	for i := range 3 {
		appendEvents(t, h.Events, "s", 1, 1)
		eventually(t, fmt.Sprintf("event %d applied without polling", i+1), func() bool { return rm.total(t) == int64(i+1) })
	}
}

// testIdleReset: an operator resets a running, idle projection's checkpoint
// and read model from outside (as `cqrskit projections rebuild` does); the
// runner must rebuild without waiting for a new event.
func testIdleReset(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Checkpoints.DB(), "projectiontest_idlereset")
	appendEvents(t, h.Events, "s-1", 50, 50)
	p := newProjection(t, projection.Config{Name: "idlereset", Events: h.Events, Checkpoints: h.Checkpoints,
		Apply: rm.apply, PollInterval: 10 * time.Millisecond})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	eventually(t, "the first catch-up", func() bool { return rm.total(t) == 50 })
	time.Sleep(50 * time.Millisecond) // idle now
	inTx(t, h.Checkpoints.DB(), func(tx *sql.Tx) error {
		if _, err := h.Checkpoints.Checkpoint(ctx, tx, "idlereset"); err != nil {
			return err
		}
		if err := rm.reset(ctx, tx); err != nil {
			return err
		}
		return h.Checkpoints.SaveCheckpoint(ctx, tx, "idlereset", event.Cursor{})
	})
	eventually(t, "the rebuild after an external reset", func() bool { return rm.total(t) == 50 })
	if d := diff(rm.rows(t), replay(t, h.Events)); d != "" {
		t.Fatalf("read model after the external reset differs from a replay: %s", d)
	}
}

// testApplyBatch: a set-based ApplyBatch builds the same read model as a
// replay, across several batches.
func testApplyBatch(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Checkpoints.DB(), "projectiontest_batch")
	for i := range 5 {
		appendEvents(t, h.Events, fmt.Sprint("s-", i), 73, 20)
	}
	var calls atomic.Int64
	p := newProjection(t, projection.Config{Name: "batch", Events: h.Events, Checkpoints: h.Checkpoints, BatchSize: 50,
		ApplyBatch: func(ctx context.Context, tx *sql.Tx, evs []event.Event) error {
			calls.Add(1)
			for _, e := range evs {
				if err := rm.apply(ctx, tx, e); err != nil {
					return err
				}
			}
			return nil
		}})
	if n, err := p.CatchUp(ctx); err != nil || n != 365 {
		t.Fatalf("CatchUp: %d, %v; want 365", n, err)
	}
	if c := calls.Load(); c != 8 {
		t.Errorf("ApplyBatch called %d times, want 8 batches of at most 50", c)
	}
	if d := diff(rm.rows(t), replay(t, h.Events)); d != "" {
		t.Fatalf("read model differs from a replay: %s", d)
	}
}

// testApplyBatchFallback: when a batch fails and Apply is set, the batch is
// applied event by event, so the events before the bad one commit.
func testApplyBatchFallback(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Checkpoints.DB(), "projectiontest_batchfallback")
	appendEvents(t, h.Events, "s", 30, 30)
	all, err := h.Events.ReadAll(ctx, event.Cursor{}, 30)
	if err != nil {
		t.Fatal(err)
	}
	bad := all[11]
	apply := func(ctx context.Context, tx *sql.Tx, e event.Event) error {
		if e.ID == bad.ID {
			return errors.New("cannot apply this one")
		}
		return rm.apply(ctx, tx, e)
	}
	p := newProjection(t, projection.Config{Name: "batchfallback", Events: h.Events, Checkpoints: h.Checkpoints,
		Apply: apply,
		ApplyBatch: func(ctx context.Context, tx *sql.Tx, evs []event.Event) error {
			for _, e := range evs {
				if err := apply(ctx, tx, e); err != nil {
					return err
				}
			}
			return nil
		}})
	n, err := p.CatchUp(ctx)
	if err == nil || !strings.Contains(err.Error(), "apply batch") || !strings.Contains(err.Error(), bad.ID.String()) {
		t.Fatalf("CatchUp: %v; want the batch error and the per-event error naming the bad event", err)
	}
	if n != 11 {
		t.Errorf("CatchUp applied %d events, want the 11 before the bad one", n)
	}
	if r := rm.rows(t)["s"]; r.N != 11 || r.LastVersion != 11 {
		t.Errorf("read model: %+v; want the first 11 events", r)
	}
}
