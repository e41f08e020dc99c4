package projectiontest

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
	"github.com/cqrskit/cqrskit/projection"
)

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
	n, err := catchUp(ctx, p, 58)
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
	if n, err := catchUp(ctx, p, 1); err == nil || n != 0 {
		t.Errorf("CatchUp again: %d, %v; want 0 and the error", n, err)
	}
	broken.Store(false)
	if n, err := catchUp(ctx, p, 43); err != nil || n != 43 {
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
	if _, err := catchUp(ctx, p, 1); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("CatchUp with a panicking Apply: %v; want an error", err)
	}
	if n, err := catchUp(ctx, p, 3); err != nil || n != 3 {
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
	if n, err := catchUp(ctx, p, 365); err != nil || n != 365 {
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
	n, err := catchUp(ctx, p, 12)
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
