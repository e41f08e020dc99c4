package kafka_test

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/kafka"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// TestDuplicateReachesConsumerAndTakesEffectOnce: Kafka has no
// de-duplication by message ID. A relay that republishes an event (its ack
// was lost) stores it twice, and the consumer gets both copies with the
// same ID; handler.Idempotent's processed mark makes the second a no-op.
func TestDuplicateReachesConsumerAndTakesEffectOnce(t *testing.T) {
	b := newBroker(t, kafka.Config{Logger: slog.New(slog.DiscardHandler)})
	ctx := t.Context()
	topic := "dedupe"
	e := event.Event{ID: event.NewID(), StreamID: "account-1", StreamType: "account", Version: 1, Position: 1,
		Type: "Deposited", SchemaVersion: 1, Data: []byte(`{"amount":10}`), RecordedAt: time.Now()}
	dup := envelope.Message(e, topic)
	next := envelope.Message(event.Event{ID: event.NewID(), StreamID: "account-1", StreamType: "account", Version: 2, Position: 2,
		Type: "Deposited", SchemaVersion: 1, Data: []byte(`{"amount":5}`), RecordedAt: time.Now()}, topic)
	for _, m := range []messagebus.Message{dup, dup, next} { // the republish is a call of its own
		if err := b.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}

	// The documented behaviour: both copies reach the consumer, same ID.
	raw := make(chan messagebus.Delivery, 10)
	sub, err := b.Subscribe(ctx, topic, "raw", func(_ context.Context, d messagebus.Delivery) error {
		raw <- d
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(context.Background())
	var ids []string
	for len(ids) < 3 {
		select {
		case d := <-raw:
			ids = append(ids, d.ID)
		case <-time.After(30 * time.Second):
			t.Fatalf("got %v, want 3 deliveries", ids)
		}
	}
	if ids[0] != dup.ID || ids[1] != dup.ID || ids[2] != next.ID {
		t.Fatalf("delivered IDs %v, want %s twice, then %s", ids, dup.ID, next.ID)
	}

	// Through handler.Idempotent the duplicate takes effect once.
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "consumer.db"), sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.DB().ExecContext(ctx, "CREATE TABLE balance (account TEXT PRIMARY KEY, amount INTEGER NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	applied := make(chan event.Event, 10)
	h, err := handler.Idempotent(handler.Config{
		Name: "balance", Store: store,
		Func: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO balance (account, amount) VALUES (?, json_extract(?, '$.amount'))
			ON CONFLICT (account) DO UPDATE SET amount = amount + excluded.amount`, e.StreamID, string(e.Data))
			if err == nil {
				applied <- e
			}
			return err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan string, 10)
	sub2, err := b.Subscribe(ctx, topic, "balance", func(ctx context.Context, d messagebus.Delivery) error {
		err := h.Handle(ctx, d)
		if err == nil {
			handled <- d.ID
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Stop(context.Background())
	for range 3 { // all three deliveries handled and acknowledged
		select {
		case <-handled:
		case <-time.After(30 * time.Second):
			t.Fatal("the idempotent consumer did not handle every delivery")
		}
	}
	if n := len(applied); n != 2 {
		t.Errorf("handler function ran %d times for 3 deliveries of 2 events, want 2", n)
	}
	var amount int
	if err := store.DB().QueryRowContext(ctx, "SELECT amount FROM balance WHERE account = 'account-1'").Scan(&amount); err != nil {
		t.Fatal(err)
	}
	if amount != 15 {
		t.Fatalf("balance = %d after the duplicate, want 15 (10 once, then 5)", amount)
	}
}
