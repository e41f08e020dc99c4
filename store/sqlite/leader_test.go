package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/memory"
	"github.com/cqrskit/cqrskit/outbox"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// openShared opens n stores on one database file, as n processes would.
func openShared(t *testing.T, n int) []*sqlite.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shared.db")
	stores := make([]*sqlite.Store, n)
	for i := range stores {
		s, err := sqlite.Open(context.Background(), path, sqlite.Config{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if err := s.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	return stores
}

func newLeader(t *testing.T, s *sqlite.Store, cfg sqlite.LeaderConfig) *sqlite.Leader {
	t.Helper()
	l, err := s.Leader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func acquire(t *testing.T, l *sqlite.Leader) outbox.Lease {
	t.Helper()
	lease, err := l.TryAcquire(context.Background())
	if err != nil {
		t.Fatalf("TryAcquire(%s): %v", l.Owner(), err)
	}
	return lease
}

func TestLeaderCompeting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stores := openShared(t, 2)
	a := newLeader(t, stores[0], sqlite.LeaderConfig{TTL: time.Minute})
	b := newLeader(t, stores[1], sqlite.LeaderConfig{TTL: time.Minute})
	if a.Owner() == b.Owner() || a.Owner() == "" {
		t.Fatalf("owners %q and %q: want distinct random IDs", a.Owner(), b.Owner())
	}

	la := acquire(t, a)
	if la == nil {
		t.Fatal("first TryAcquire: no lease")
	}
	if lb := acquire(t, b); lb != nil {
		t.Fatal("a second process acquired a held lease")
	}
	if l := acquire(t, a); l != nil {
		t.Fatal("a Leader acquired its own lease twice: one Leader serves one relay")
	}
	if err := la.Keep(ctx); err != nil {
		t.Fatalf("Keep: %v", err)
	}
	if err := la.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := la.Release(ctx); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	lb := acquire(t, b)
	if lb == nil {
		t.Fatal("the standby could not acquire a released lease")
	}
	if l := acquire(t, a); l != nil {
		t.Fatal("acquired a lease the other process holds")
	}
	if err := la.Keep(ctx); !errors.Is(err, sqlite.ErrLeaseLost) {
		t.Errorf("Keep of a released lease: %v, want ErrLeaseLost", err)
	}

	// Leases of other names are independent.
	other := newLeader(t, stores[0], sqlite.LeaderConfig{Name: "outbox-2"})
	if l := acquire(t, other); l == nil {
		t.Error("a lease of another name was not free")
	}
}

func TestLeaderExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stores := openShared(t, 2)
	short := newLeader(t, stores[0], sqlite.LeaderConfig{TTL: 50 * time.Millisecond})
	standby := newLeader(t, stores[1], sqlite.LeaderConfig{TTL: time.Minute})

	ls := acquire(t, short)
	if ls == nil {
		t.Fatal("no lease")
	}
	// The holder stops keeping its lease (a hung or killed process).
	time.Sleep(100 * time.Millisecond)
	lt := acquire(t, standby)
	if lt == nil {
		t.Fatal("the standby did not take over an expired lease")
	}
	if err := ls.Keep(ctx); !errors.Is(err, sqlite.ErrLeaseLost) {
		t.Errorf("Keep after a takeover: %v, want ErrLeaseLost", err)
	}
	if err := ls.Release(ctx); err != nil {
		t.Errorf("Release of a lost lease: %v", err)
	}
	if err := lt.Keep(ctx); err != nil {
		t.Errorf("the new holder lost its lease to the old one's Release: %v", err)
	}
	if l := acquire(t, short); l != nil {
		t.Error("the old holder took the lease back while the new one keeps it")
	}
}

func TestLeaderSameOwnerRestarts(t *testing.T) {
	t.Parallel()
	stores := openShared(t, 2)
	first := newLeader(t, stores[0], sqlite.LeaderConfig{Owner: "relay-1", TTL: time.Hour})
	if acquire(t, first) == nil {
		t.Fatal("no lease")
	}
	// The process restarts without releasing: with the same owner it takes
	// its lease back at once instead of waiting an hour.
	restarted := newLeader(t, stores[1], sqlite.LeaderConfig{Owner: "relay-1", TTL: time.Hour})
	if acquire(t, restarted) == nil {
		t.Error("a restarted relay with the same owner could not take its lease back")
	}
	if _, err := stores[0].Leader(sqlite.LeaderConfig{TTL: -time.Second}); err == nil {
		t.Error("a negative TTL was accepted")
	}
}

// TestLeaderOneAtATime: eight processes competing for one lease never hold
// it together.
func TestLeaderOneAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	stores := openShared(t, 4)
	var holders, maxHolders, acquired atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		l := newLeader(t, stores[i%len(stores)], sqlite.LeaderConfig{TTL: time.Minute})
		wg.Go(func() {
			for range 30 {
				lease, err := l.TryAcquire(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if lease == nil {
					time.Sleep(time.Millisecond)
					continue
				}
				acquired.Add(1)
				n := holders.Add(1)
				for {
					m := maxHolders.Load()
					if n <= m || maxHolders.CompareAndSwap(m, n) {
						break
					}
				}
				if err := lease.Keep(ctx); err != nil {
					t.Error(err)
				}
				time.Sleep(time.Millisecond)
				holders.Add(-1)
				if err := lease.Release(ctx); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if maxHolders.Load() != 1 || acquired.Load() == 0 {
		t.Errorf("at most %d holders at once over %d acquisitions; want exactly 1", maxHolders.Load(), acquired.Load())
	}
}

// TestLeaderRelays runs two relays on one database file, as two processes:
// one publishes, the other stands by and takes over when the first stops.
func TestLeaderRelays(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stores := openShared(t, 2)
	bus, err := memory.New(memory.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	var mu sync.Mutex
	got := map[string]int{}
	sub, err := bus.Subscribe(ctx, "product", "counter", func(_ context.Context, d messagebus.Delivery) error {
		mu.Lock()
		got[d.ID]++
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(context.Background())
	delivered := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}

	type relay struct {
		r      *outbox.Relay
		cancel context.CancelFunc
		done   chan struct{}
	}
	relays := make([]relay, 2)
	for i, s := range stores {
		r, err := outbox.NewRelay(outbox.Config{
			Store: s, Publisher: bus, Notifier: s, Leader: newLeader(t, s, sqlite.LeaderConfig{TTL: 2 * time.Second}),
			StandbyInterval: 20 * time.Millisecond, PollInterval: 10 * time.Millisecond,
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithCancel(ctx)
		relays[i] = relay{r: r, cancel: rcancel, done: make(chan struct{})}
		go func() {
			defer close(relays[i].done)
			_ = r.Run(rctx)
		}()
	}
	defer func() {
		for _, r := range relays {
			r.cancel()
			<-r.done
		}
	}()
	appendN := func(s *sqlite.Store, from, n int) {
		for i := range n {
			if _, err := s.Append(ctx, fmt.Sprint("product-", from+i), event.NoStream, []event.Event{
				{StreamType: "product", Type: "product.created", Data: []byte("{}")}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	active := func() (int, int) {
		n, which := 0, -1
		for i, r := range relays {
			p, _ := r.r.Progress(ctx)
			if p.Active {
				n++
				which = i
			}
		}
		return n, which
	}

	appendN(stores[0], 0, 50)
	appendN(stores[1], 50, 50)
	waitFor(t, "100 events published", func() bool { return delivered() == 100 })
	n, leader := active()
	if n != 1 {
		t.Fatalf("%d relays active, want 1", n)
	}
	// Stop the active relay; the standby takes over.
	relays[leader].cancel()
	<-relays[leader].done
	appendN(stores[leader], 100, 50)
	waitFor(t, "the standby to publish", func() bool { return delivered() == 150 })
	if n, now := active(); n != 1 || now == leader {
		t.Errorf("after the leader stopped: %d active (relay %d), want the other one", n, now)
	}
	mu.Lock()
	for id, c := range got {
		if c != 1 {
			t.Errorf("message %s delivered %d times", id, c)
		}
	}
	mu.Unlock()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
