package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/handler/handlertest"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

func TestHandlerContract(t *testing.T) {
	handlertest.Run(t, func(t testing.TB) handlertest.Harness {
		return handlertest.Harness{Store: newStore(t, sqlite.Config{})}
	})
}

func BenchmarkHandler(b *testing.B) {
	handlertest.Bench(b, func(t testing.TB) handlertest.Harness {
		return handlertest.Harness{Store: newStore(t, sqlite.Config{})}
	})
}

// TestHandlerClosedDatabase: a consumer whose database handle is closed
// does not acknowledge, dead-letter or lose the message; a consumer on a
// working handle handles it afterwards.
func TestHandlerClosedDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stores := openShared(t, 2)
	closed, working := stores[0], stores[1]
	if err := closed.DB().Close(); err != nil {
		t.Fatal(err)
	}
	var applied int
	fn := func(ctx context.Context, tx *sql.Tx, e event.Event) error {
		applied++
		_, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY)")
		if err == nil {
			_, err = tx.ExecContext(ctx, "INSERT INTO seen (id) VALUES (?)", e.ID.String())
		}
		return err
	}
	e := event.Event{ID: event.NewID(), StreamID: "s", Version: 1, Type: "t", SchemaVersion: 1, Data: []byte("{}")}
	d := messagebus.Delivery{Message: envelope.Message(e, "t"), Attempt: 1}

	down, err := handler.Idempotent(handler.Config{Name: "closed", Store: closed, Func: fn, RetryPolicy: handler.RetryPolicy{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; attempt <= 3; attempt++ {
		d.Attempt = attempt
		err := down.Handle(ctx, d)
		if _, ok := messagebus.RetryDelay(err); err == nil || !ok {
			t.Fatalf("Handle on a closed database: %v; want an error with a retry delay", err)
		}
	}
	if applied != 0 {
		t.Fatalf("handler func ran %d times without a database", applied)
	}

	up, err := handler.Idempotent(handler.Config{Name: "closed", Store: working, Func: fn})
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Handle(ctx, d); err != nil {
		t.Fatalf("Handle on a working database: %v", err)
	}
	if err := up.Handle(ctx, d); err != nil {
		t.Fatal(err)
	}
	if applied != 1 {
		t.Errorf("applied %d times, want 1", applied)
	}
	if dls, err := working.ListDeadLetters(ctx, "", 0, 10); err != nil || len(dls) != 0 {
		t.Errorf("dead letters: %+v, %v; want none", dls, err)
	}
	if _, err := closed.GetDeadLetter(ctx, 1); err == nil || errors.Is(err, handler.ErrDeadLetterNotFound) {
		t.Errorf("GetDeadLetter on a closed database: %v; want the database error", err)
	}
}
