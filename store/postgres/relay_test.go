package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/messagebus"
	busmem "github.com/cqrskit/cqrskit/messagebus/memory"
	"github.com/cqrskit/cqrskit/outbox"
)

// received records what a broker subscription delivers, per stream.
type received struct {
	mu       sync.Mutex
	versions map[string][]int64 // stream -> versions in delivery order
	total    atomic.Int64
}

func receive(t *testing.T, b messagebus.Subscriber, topic string) *received {
	t.Helper()
	r := &received{versions: map[string][]int64{}}
	sub, err := b.Subscribe(t.Context(), topic, "check", func(_ context.Context, d messagebus.Delivery) error {
		e, err := envelope.Event(d.Message)
		if err != nil {
			t.Errorf("delivered message is not an event: %v", err)
			return nil
		}
		r.mu.Lock()
		r.versions[e.StreamID] = append(r.versions[e.StreamID], e.Version)
		r.mu.Unlock()
		r.total.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Stop(context.Background()) })
	return r
}

// check asserts that every stream arrived whole, once, in version order.
func (r *received) check(t *testing.T, want map[string]int64) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.versions) != len(want) {
		t.Errorf("received %d streams, want %d", len(r.versions), len(want))
	}
	for stream, n := range want {
		exp := make([]int64, n)
		for i := range exp {
			exp[i] = int64(i + 1)
		}
		if got := r.versions[stream]; !slices.Equal(got, exp) {
			t.Errorf("stream %s arrived as versions %v, want 1..%d once each, in order", stream, got, n)
		}
	}
}

// writers appends rounds events, one per append, to each of 8 writers'
// streams concurrently, and records each stream's length in want.
func writers(t *testing.T, s *Store, tag string, rounds int, want map[string]int64, mu *sync.Mutex) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range rounds {
				stream := fmt.Sprintf("%s-w%d-s%d", tag, w, i%3)
				if _, err := s.Append(t.Context(), stream, event.Any, evs(1)); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				want[stream]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// lockHolder returns the backend pid holding the store's relay lock, 0 if
// none.
func lockHolder(t *testing.T, s *Store) int {
	t.Helper()
	var pid int
	err := s.DB().QueryRow(`SELECT coalesce(max(pid), 0) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 1
		  AND classid = $1 AND objid = $2::text::regclass::oid`, relayLockSpace, s.Table("outbox")).Scan(&pid)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// Three relay processes (each with its own Leader and Listener) share one
// outbox while eight writers append: one relay is active at a time, every
// event is published once and in stream order. Then the active relay's
// lock connection dies and a standby takes over.
func TestRelayLeaderFailover(t *testing.T) {
	t.Parallel()
	quiet := slog.New(slog.DiscardHandler)
	s, url := storeWithURL(t, Config{Logger: quiet})
	s.DB().SetMaxOpenConns(20) // 8 writers, 3 relays, their leaders and the monitor
	broker, err := busmem.New(busmem.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = broker.Close() })
	got := receive(t, broker, "product")

	const standby = 200 * time.Millisecond
	relays := make([]*outbox.Relay, 3)
	leaders := make([]*watchedLeader, 3)
	var running sync.WaitGroup
	t.Cleanup(running.Wait) // t.Context ends first
	for i := range relays {
		leaders[i] = &watchedLeader{Leader: newLeader(t, s, LeaderConfig{})}
		r, err := outbox.NewRelay(outbox.Config{
			Store: s, Publisher: broker,
			Leader: leaders[i], Notifier: newListener(t, s, url),
			BatchSize: 50, StandbyInterval: standby, Logger: quiet,
		})
		if err != nil {
			t.Fatal(err)
		}
		relays[i] = r
		running.Go(func() {
			if err := r.Run(t.Context()); err != nil {
				t.Errorf("relay %d: %v", i, err)
			}
		})
	}
	activeNow := func() []int {
		var act []int
		for i, r := range relays {
			p, err := r.Progress(t.Context())
			if err != nil && t.Context().Err() == nil {
				t.Errorf("progress of relay %d: %v", i, err)
			}
			if p.Active {
				act = append(act, i)
			}
		}
		return act
	}

	// Watch the relays' Active flags throughout phase 1.
	var maxActive atomic.Int64
	monitorCtx, stopMonitor := context.WithCancel(t.Context())
	var monitor sync.WaitGroup
	monitor.Go(func() {
		for monitorCtx.Err() == nil {
			if n := int64(len(activeNow())); n > maxActive.Load() {
				maxActive.Store(n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})

	var mu sync.Mutex
	want := map[string]int64{}
	writers(t, s, "p1", 100, want, &mu)
	eventually(t, "phase 1's 800 events to be published", func() bool { return got.total.Load() == 800 })
	stopMonitor()
	monitor.Wait()
	got.check(t, want)
	if n := maxActive.Load(); n != 1 {
		t.Errorf("phase 1: at most %d relays active at once, want exactly 1", n)
	}
	var published int64
	for _, r := range relays {
		p, _ := r.Progress(t.Context())
		published += p.Published
	}
	if published != 800 {
		t.Errorf("relays report %d published, want 800", published)
	}

	// Phase 2: the active relay's lock connection dies while writers go on.
	var old int
	eventually(t, "one active relay", func() bool {
		act := activeNow()
		if len(act) == 1 {
			old = act[0]
		}
		return len(act) == 1
	})
	oldPid := lockHolder(t, s)
	if oldPid == 0 {
		t.Fatal("an active relay but nobody holds the lock")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		writers(t, s, "p2", 50, want, &mu)
	}()
	// A relay whose lock connection died may win the lock back at once (it
	// is a standby like the others); keep it out to see a standby take over,
	// as when the old relay's host lost the database for good.
	leaders[old].refuse.Store(true)
	killed := time.Now()
	terminate(t, s, oldPid)
	eventually(t, "the old relay's Keep to fail", func() bool { return leaders[old].keepFailed.Load() })
	noticed := time.Since(killed)
	var taken time.Duration
	eventually(t, "a standby to take over", func() bool {
		pid := lockHolder(t, s)
		act := activeNow()
		taken = time.Since(killed)
		return pid != 0 && pid != oldPid && len(act) == 1 && act[0] != old
	})
	t.Logf("old relay %d's Keep failed %v after its lock connection was killed; a standby took over after %v",
		old, noticed.Round(time.Millisecond), taken.Round(time.Millisecond))
	<-done
	eventually(t, "phase 2's 400 events to be published", func() bool { return got.total.Load() == 1200 })
	got.check(t, want)
	// Rows are deleted after the broker's ack, so a moment after delivery.
	eventually(t, "an empty outbox", func() bool {
		p, err := relays[0].Progress(t.Context())
		return err == nil && p.Backlog == 0
	})
}

// watchedLeader records when a lease it handed out fails Keep, and stops
// acquiring when told to refuse.
type watchedLeader struct {
	*Leader
	keepFailed atomic.Bool
	refuse     atomic.Bool
}

func (w *watchedLeader) TryAcquire(ctx context.Context) (outbox.Lease, error) {
	if w.refuse.Load() {
		return nil, nil
	}
	l, err := w.Leader.TryAcquire(ctx)
	if l == nil {
		return nil, err
	}
	return watchedLease{l, w}, err
}

type watchedLease struct {
	outbox.Lease
	w *watchedLeader
}

func (l watchedLease) Keep(ctx context.Context) error {
	err := l.Lease.Keep(ctx)
	if err != nil {
		l.w.keepFailed.Store(true)
	}
	return err
}
