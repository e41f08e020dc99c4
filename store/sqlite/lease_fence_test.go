package sqlite_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/memory"
	"github.com/cqrskit/cqrskit/outbox"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// pausingPublisher stalls its first call past the relay's lease, as a
// process stopped by the kernel or a long GC pause would, ignoring ctx,
// then sends the batch anyway.
type pausingPublisher struct {
	inner outbox.Publisher
	pause time.Duration
	calls atomic.Int32
}

func (p *pausingPublisher) Publish(ctx context.Context, msgs ...messagebus.Message) error {
	if p.calls.Add(1) == 1 {
		time.Sleep(p.pause)
		return p.inner.Publish(context.WithoutCancel(ctx), msgs...)
	}
	return p.inner.Publish(ctx, msgs...)
}

// countingStore counts the deletes made through it.
type countingStore struct {
	*sqlite.Store
	deletes atomic.Int32
}

func (s *countingStore) Delete(ctx context.Context, ids []int64) error {
	s.deletes.Add(1)
	return s.Store.Delete(ctx, ids)
}

// A relay paused past its lease while publishing: a standby takes over,
// and the paused relay, when it resumes, neither deletes what it published
// nor publishes again; it stands by.
func TestRelayPausedPastLeaseStopsBeforeDelete(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stores := openShared(t, 2)
	for i := range 10 {
		if _, err := stores[0].Append(ctx, "product-1", event.Any, []event.Event{newEvent("product.changed", `{"i":`+string(rune('0'+i))+`}`)}); err != nil {
			t.Fatal(err)
		}
	}
	bus, err := memory.New(memory.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	var mu sync.Mutex
	var versions []string
	sub, err := bus.Subscribe(ctx, "events", "order", func(_ context.Context, d messagebus.Delivery) error {
		mu.Lock()
		versions = append(versions, d.Headers[envelope.HeaderVersion])
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(context.Background())

	ttl := 300 * time.Millisecond
	paused := &pausingPublisher{inner: bus, pause: 4 * ttl}
	a := &countingStore{Store: stores[0]}
	ra, err := outbox.NewRelay(outbox.Config{
		Store: a, Publisher: paused, Leader: newLeader(t, stores[0], sqlite.LeaderConfig{Owner: "a", TTL: ttl}),
		StandbyInterval: 20 * time.Millisecond, PollInterval: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(ctx)
	defer acancel()
	go func() { _ = ra.Run(actx) }()
	waitFor(t, "relay a in its paused publish", func() bool { return paused.calls.Load() == 1 })

	b := &countingStore{Store: stores[1]}
	rb, err := outbox.NewRelay(outbox.Config{
		Store: b, Publisher: bus, Leader: newLeader(t, stores[1], sqlite.LeaderConfig{Owner: "b", TTL: ttl}),
		StandbyInterval: 20 * time.Millisecond, PollInterval: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	bctx, bcancel := context.WithCancel(ctx)
	defer bcancel()
	go func() { _ = rb.Run(bctx) }()
	waitFor(t, "relay b to take over and drain", func() bool {
		st, _ := stores[1].Stats(ctx)
		return st.Backlog == 0 && b.deletes.Load() > 0
	})
	time.Sleep(paused.pause + 200*time.Millisecond) // a resumes and finishes its publish
	if n := a.deletes.Load(); n != 0 {
		t.Errorf("relay a deleted %d times after its lease ran out during the publish; want none", n)
	}
	if n := paused.calls.Load(); n != 1 {
		t.Errorf("relay a published %d times; want only the publish it was paused in", n)
	}
	if p, _ := ra.Progress(ctx); p.Active {
		t.Error("relay a still reports itself active after losing its lease")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(versions) < 10 {
		t.Errorf("received %d messages, want at least the 10 events", len(versions))
	}
}
