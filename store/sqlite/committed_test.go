package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// Committed, the event.TxStore call after the caller's commit, wakes the
// store's listeners; the commit alone does not (SQLite cannot see it).
func TestCommittedWakesListeners(t *testing.T) {
	s := newStore(t, sqlite.Config{})
	ctx := context.Background()
	var ts event.TxStore = s
	c, err := s.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := ts.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.AppendTx(ctx, tx, "committed-1", event.NoStream, []event.Event{newEvent("t", `{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c:
		t.Fatal("a listener woke on the caller's commit alone; this test cannot tell what Committed does")
	case <-time.After(50 * time.Millisecond):
	}
	ts.Committed()
	select {
	case <-c:
	case <-time.After(5 * time.Second):
		t.Fatal("Committed did not wake the listener")
	}
}
