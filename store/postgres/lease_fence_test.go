package postgres

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/memory"
	"github.com/cqrskit/cqrskit/outbox"
)

// blockingPublisher holds its first call until release is closed, as a
// stalled process would, then sends the batch anyway.
type blockingPublisher struct {
	inner   outbox.Publisher
	calls   atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (p *blockingPublisher) Publish(ctx context.Context, msgs ...messagebus.Message) error {
	if p.calls.Add(1) == 1 {
		close(p.entered)
		<-p.release
		return p.inner.Publish(context.WithoutCancel(ctx), msgs...)
	}
	return p.inner.Publish(ctx, msgs...)
}

type countingDeletes struct {
	*Store
	deletes atomic.Int32
}

func (s *countingDeletes) Delete(ctx context.Context, ids []int64) error {
	s.deletes.Add(1)
	return s.Store.Delete(ctx, ids)
}

// The relay lock's session dies while the leader is stuck in a publish: a
// standby takes over, and the old leader, when its publish returns, checks
// its lock before deleting, finds it gone and stops without deleting or
// publishing again.
func TestRelayLosingLockDuringPublishStopsBeforeDelete(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := t.Context()
	for range 5 {
		if _, err := s.Append(ctx, "product-1", event.Any, []event.Event{{Type: "product.changed", Data: []byte(`{}`)}}); err != nil {
			t.Fatal(err)
		}
	}
	bus, err := memory.New(memory.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	pub := &blockingPublisher{inner: bus, entered: make(chan struct{}), release: make(chan struct{})}
	a := &countingDeletes{Store: s}
	ra, err := outbox.NewRelay(outbox.Config{Store: a, Publisher: pub, Leader: newLeader(t, s, LeaderConfig{}),
		StandbyInterval: 20 * time.Millisecond, PollInterval: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(ctx)
	defer acancel()
	go func() { _ = ra.Run(actx) }()
	<-pub.entered
	h, held, err := s.LeaseHolder(ctx)
	if err != nil || !held {
		t.Fatalf("LeaseHolder = %v, %v", held, err)
	}
	terminate(t, s, h.PID)

	b := &countingDeletes{Store: s}
	rb, err := outbox.NewRelay(outbox.Config{Store: b, Publisher: bus, Leader: newLeader(t, s, LeaderConfig{}),
		StandbyInterval: 20 * time.Millisecond, PollInterval: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	bctx, bcancel := context.WithCancel(ctx)
	defer bcancel()
	go func() { _ = rb.Run(bctx) }()
	eventually(t, "the standby to take over and drain", func() bool {
		st, _ := s.Stats(ctx)
		return st.Backlog == 0 && b.deletes.Load() > 0
	})
	close(pub.release)
	eventually(t, "the old leader to stand by", func() bool { p, _ := ra.Progress(ctx); return !p.Active })
	if n := a.deletes.Load(); n != 0 {
		t.Errorf("old leader deleted %d times after its lock's session died; want none", n)
	}
	if n := pub.calls.Load(); n != 1 {
		t.Errorf("old leader published %d times; want only the stalled publish", n)
	}
}
