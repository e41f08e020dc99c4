package postgres

import (
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/natsjs"
	"github.com/cqrskit/cqrskit/testutil/natstest"
)

// A relay outage longer than JetStream's duplicate window: the relay
// republishes an event the broker stored already, the broker no longer
// recognises its message ID and stores it twice, and the consumer gets
// both. Through handler.Idempotent the event still takes effect once.
func TestRepublishAfterDuplicateWindowTakesEffectOnce(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := natstest.Machine(t)
	suffix := strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	stream, prefix := "DEDUPE_"+suffix, "dedupe"+suffix
	const window = 100 * time.Millisecond

	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	jsStream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: stream, Subjects: []string{prefix + ".>"}, Storage: jetstream.MemoryStorage, Duplicates: window,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), stream) })
	bus, err := natsjs.New(ctx, natsjs.Config{URL: url, Stream: stream, SubjectPrefix: prefix,
		UseExistingStream: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Close() })
	stored := func() uint64 {
		t.Helper()
		info, err := jsStream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}

	s := newStore(t, Config{})
	if _, err := s.DB().ExecContext(ctx, `CREATE TABLE rm (id TEXT PRIMARY KEY, applied BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	h, err := handler.Idempotent(handler.Config{
		Name: "dedupe-window", Store: s, Logger: slog.New(slog.DiscardHandler),
		Func: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO rm VALUES ($1, 1)
			ON CONFLICT (id) DO UPDATE SET applied = rm.applied + 1`, e.StreamID)
			return err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	sub, err := bus.Subscribe(ctx, "product", "rm", func(ctx context.Context, d messagebus.Delivery) error {
		err := h.Handle(ctx, d)
		if err == nil {
			handled.Add(1)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Stop(context.Background()) })

	e := event.Event{ID: event.NewID(), StreamID: "product-1", StreamType: "product", Version: 1, Position: 1,
		Type: "product.created", SchemaVersion: 1, Data: []byte(`{}`), RecordedAt: time.Now().UTC()}
	msg := envelope.Message(e, "product")
	for range 2 { // a republish within the window is dropped by the broker
		if err := bus.Publish(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	if n := stored(); n != 1 {
		t.Fatalf("stream holds %d messages after a republish within the duplicate window, want 1", n)
	}
	// The outage outlasts the window: the republish is stored again.
	for stored() < 2 {
		time.Sleep(2 * window)
		if err := bus.Publish(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	if n := stored(); n != 2 {
		t.Fatalf("stream holds %d messages, want 2: the event and its late republish", n)
	}
	for handled.Load() < 2 {
		if ctx.Err() != nil {
			t.Fatalf("handled %d deliveries, want 2: %v", handled.Load(), ctx.Err())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var applied int
	if err := s.DB().QueryRowContext(ctx, `SELECT applied FROM rm WHERE id = $1`, e.StreamID).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != 1 {
		t.Errorf("read model applied the event %d times from %d deliveries, want once", applied, handled.Load())
	}
}
