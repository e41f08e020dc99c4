package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/event"
)

func TestCheckpointSaveLoadDelete(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := t.Context()

	tx := begin(t, s)
	c, err := s.Checkpoint(ctx, tx, "products")
	if err != nil || c != (event.Cursor{}) {
		t.Fatalf("new checkpoint: %+v, %v", c, err)
	}
	want := event.Cursor{TxID: 1 << 40, Position: 42}
	if err := s.SaveCheckpoint(ctx, tx, "products", want); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	tx = begin(t, s)
	if c, err := s.Checkpoint(ctx, tx, "products"); err != nil || c != want {
		t.Errorf("after save: %+v, %v; want %+v", c, err, want)
	}
	if c, err := s.Checkpoint(ctx, tx, "other"); err != nil || c != (event.Cursor{}) {
		t.Errorf("other projection: %+v, %v", c, err)
	}
	if err := s.DeleteCheckpoint(ctx, tx, "products"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteCheckpoint(ctx, tx, "never-saved"); err != nil {
		t.Errorf("delete a missing checkpoint: %v", err)
	}
	if c, err := s.Checkpoint(ctx, tx, "products"); err != nil || c != (event.Cursor{}) {
		t.Errorf("after delete: %+v, %v", c, err)
	}
	_ = tx.Rollback()

	// Rolled back: the saved cursor is still there.
	tx = begin(t, s)
	if c, err := s.Checkpoint(ctx, tx, "products"); err != nil || c != want {
		t.Errorf("after a rolled-back delete: %+v, %v", c, err)
	}

	bad := []event.Cursor{{TxID: math.MaxInt64 + 1}, {Position: -1}}
	for _, c := range bad {
		if err := s.SaveCheckpoint(ctx, tx, "products", c); !errors.Is(err, event.ErrInvalidEvent) {
			t.Errorf("save %+v: %v", c, err)
		}
		if _, err := s.CountEvents(ctx, c); !errors.Is(err, event.ErrInvalidEvent) {
			t.Errorf("count after %+v: %v", c, err)
		}
	}
	if _, err := s.Checkpoint(ctx, nil, "products"); err == nil {
		t.Error("Checkpoint with a nil tx: no error")
	}
}

// A second runner of a projection waits on Checkpoint until the first
// one's transaction ends, then sees its saved cursor; also for a
// checkpoint that did not exist before.
func TestCheckpointLocks(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := t.Context()
	for _, name := range []string{"fresh", "fresh"} { // created by the first round, existing in the second
		tx1 := begin(t, s)
		c1, err := s.Checkpoint(ctx, tx1, name)
		if err != nil {
			t.Fatal(err)
		}
		type result struct {
			c   event.Cursor
			err error
		}
		second := make(chan result, 1)
		tx2 := begin(t, s)
		go func() {
			c, err := s.Checkpoint(ctx, tx2, name)
			second <- result{c, err}
		}()
		select {
		case r := <-second:
			t.Fatalf("second Checkpoint did not wait: %+v", r)
		case <-time.After(300 * time.Millisecond):
		}
		next := event.Cursor{TxID: c1.TxID + 1, Position: c1.Position + 10}
		if err := s.SaveCheckpoint(ctx, tx1, name, next); err != nil {
			t.Fatal(err)
		}
		if err := tx1.Commit(); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-second:
			if r.err != nil || r.c != next {
				t.Errorf("second runner: %+v, %v; want %+v", r.c, r.err, next)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("second Checkpoint still waiting after the first committed")
		}
		if err := tx2.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCountEvents(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := t.Context()
	if n, err := s.CountEvents(ctx, event.Cursor{}); err != nil || n != 0 {
		t.Fatalf("empty store: %d, %v", n, err)
	}
	for i := range 5 {
		if _, err := s.Append(ctx, fmt.Sprintf("s-%d", i), event.NoStream, evs(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	all := readAllEventually(t, s, 15)
	if len(all) != 15 {
		t.Fatalf("read %d events", len(all))
	}
	for i := range all {
		after := all[i].Cursor()
		n, err := s.CountEvents(ctx, after)
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(len(all) - i - 1); n != want {
			t.Errorf("count after event %d: %d, want %d", i, n, want)
		}
	}
	if n, _ := s.CountEvents(ctx, event.Cursor{}); n != 15 {
		t.Errorf("count from the start: %d", n)
	}

	// Events of a transaction still running are not counted, as ReadAll
	// does not return them yet.
	tx := begin(t, s)
	if _, err := s.AppendTx(ctx, tx, "open", event.NoStream, evs(3)); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CountEvents(ctx, event.Cursor{}); n != 15 {
		t.Errorf("count with an open transaction: %d, want 15", n)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	readAllEventually(t, s, 18)
	if n, _ := s.CountEvents(context.Background(), all[len(all)-1].Cursor()); n != 3 {
		t.Errorf("count of the committed transaction's events: %d, want 3", n)
	}
}
