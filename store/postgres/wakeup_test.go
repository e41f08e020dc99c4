package postgres

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/memory"
	"github.com/cqrskit/cqrskit/outbox"
)

// Two commits overlap: the second one's notification is coalesced away
// (another transaction holds the notify lock while it commits), and it
// finishes committing only after the relay, woken by the first, has read
// the outbox. Its event must still be published at once, not after the
// poll interval (an hour here).
func TestRelayWokenForCommitWhoseNotificationWasCoalesced(t *testing.T) {
	t.Parallel()
	s, url := storeWithURL(t, Config{})
	ctx := t.Context()
	listener, err := s.Listener(url)
	if err != nil {
		t.Fatal(err)
	}
	bus, err := memory.New(memory.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	got := make(chan string, 10)
	sub, err := bus.Subscribe(ctx, "events", "wake", func(_ context.Context, d messagebus.Delivery) error {
		got <- d.Headers[envelope.HeaderStreamID]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(context.Background())
	r, err := outbox.NewRelay(outbox.Config{Store: s, Publisher: bus, Notifier: listener, PollInterval: time.Hour,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = r.Run(rctx) }()
	eventually(t, "the relay to listen", func() bool { p, _ := r.Progress(ctx); return p.Active && listener.pid.Load() != 0 })
	time.Sleep(50 * time.Millisecond) // the relay's first (empty) drain

	// T appends and is about to commit.
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := s.AppendTx(ctx, tx, "late-1", event.NoStream, []event.Event{{Type: "thing.late", Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	// X holds the notify lock, as a transaction committing its own
	// notification does.
	x, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Rollback()
	if _, err := x.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, s.cfg.templateData().NotifyLock); err != nil {
		t.Fatal(err)
	}
	// The first commit's notification arrives; the relay reads and finds
	// nothing (T has not committed).
	if _, err := s.DB().ExecContext(ctx, `SELECT pg_notify($1, '')`, s.NotifyChannel()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	// T commits; its trigger finds the lock taken and sends nothing.
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	defer func() { t.Logf("published %s after the commit", time.Since(start)) }()
	select {
	case stream := <-got:
		if stream != "late-1" {
			t.Fatalf("published %s, want late-1", stream)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event of a commit whose notification was coalesced away waits for the poll interval")
	}
}
