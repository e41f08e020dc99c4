package projectiontest

import (
	"database/sql"
	"fmt"
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
