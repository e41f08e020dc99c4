package outbox_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/kafka"
	"github.com/cqrskit/cqrskit/messagebus/natsjs"
	"github.com/cqrskit/cqrskit/outbox"
	"github.com/cqrskit/cqrskit/store/postgres"
	"github.com/cqrskit/cqrskit/store/sqlite"
	"github.com/cqrskit/cqrskit/testutil/natstest"
	"github.com/cqrskit/cqrskit/testutil/pgtest"
)

// These tests relay real stores to real brokers: SQLite and PostgreSQL,
// an in-process NATS JetStream server (and the machine's, when
// CQRSKIT_TEST_NATS_URL is set), and franz-go's in-process Kafka.

var quiet = slog.New(slog.DiscardHandler)

func sqliteStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"), sqlite.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func postgresStore(t *testing.T) *postgres.Store {
	t.Helper()
	pg := pgtest.New(t)
	s, err := postgres.New(pg.DB(), postgres.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// natsBroker connects to url on a stream of its own; tweak adjusts the
// config.
func natsBroker(t testing.TB, url string, tweak ...func(*natsjs.Config)) *natsjs.Broker {
	t.Helper()
	cfg := natsjs.Config{
		URL: url, Stream: "RELAY_" + fmt.Sprint(rand.Uint64()), SubjectPrefix: "rt" + fmt.Sprint(rand.Uint32()),
		Logger: quiet,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	b, err := natsjs.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// crashOnce lets the first Delete fail like a relay killed after the
// broker acknowledged the batch, and reports when it did.
type crashOnce struct {
	outbox.Store
	crashed atomic.Bool
}

func (c *crashOnce) Delete(ctx context.Context, ids []int64) error {
	if c.crashed.CompareAndSwap(false, true) {
		return fmt.Errorf("relay killed after publishing %d events", len(ids))
	}
	return c.Store.Delete(ctx, ids)
}

// crashThenTakeOver runs a relay that dies between publish and delete, then
// a fresh relay on the same outbox, and waits until the outbox is empty.
func crashThenTakeOver(t *testing.T, store outbox.Store, pub outbox.Publisher) {
	t.Helper()
	crashing := &crashOnce{Store: store}
	r1, err := outbox.NewRelay(outbox.Config{Store: crashing, Publisher: pub, BatchSize: 50, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r1.DrainOnce(t.Context()); err == nil || !crashing.crashed.Load() {
		t.Fatalf("first relay: %v; want the simulated crash", err)
	}
	// The "crashed" relay is gone; a new one starts on the same outbox.
	startRelay(t, outbox.Config{Store: store, Publisher: pub, BatchSize: 50, Logger: quiet})
	waitFor(t, "an empty outbox", func() bool {
		st, err := store.Stats(t.Context())
		return err == nil && st.Backlog == 0
	})
}

func TestRelayNATSCrashBetweenPublishAndDelete(t *testing.T) {
	store := sqliteStore(t)
	broker := natsBroker(t, natstest.URL(t))
	got := collect(t, broker, "thing")
	fill(t, store, 10, 20)
	crashThenTakeOver(t, store, broker)
	waitFor(t, "200 deliveries", func() bool { return got.total.Load() >= 200 })
	time.Sleep(200 * time.Millisecond) // a duplicate would arrive now
	// The first batch was published twice; JetStream dropped the copies.
	got.check(t, 10, 20)
}

func TestRelayKafkaCrashBetweenPublishAndDelete(t *testing.T) {
	store := sqliteStore(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	broker, err := kafka.New(t.Context(), kafka.Config{Brokers: c.ListenAddrs(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = broker.Close() })
	got := collect(t, broker, "thing")
	fill(t, store, 10, 20)
	crashThenTakeOver(t, store, broker)
	waitFor(t, "every event", func() bool {
		got.mu.Lock()
		defer got.mu.Unlock()
		return len(got.ids) == 200
	})
	// Kafka keeps the republished batch: duplicates are visible, each with
	// the ID of the event it repeats, and each stream's first delivery of
	// every version is in order.
	got.mu.Lock()
	defer got.mu.Unlock()
	dups := 0
	for _, n := range got.ids {
		dups += n - 1
	}
	if dups > 50 {
		t.Errorf("%d duplicate deliveries; at most the one republished batch of 50 expected", dups)
	}
	for s, vs := range got.byStream {
		next := int64(1)
		for _, v := range vs {
			if v == next {
				next++
			} else if v > next {
				t.Errorf("stream %s: version %d arrived before %d", s, v, next)
			}
		}
		if next != 21 {
			t.Errorf("stream %s: versions %v, want 1..20", s, vs)
		}
	}
}

// paced waits before each Publish, so the relay takes about a second for
// 2000 events and is still draining when the test stops the server.
// Unpaced it may be done before the shutdown, with no error to report.
type paced struct {
	outbox.Publisher
	wait time.Duration
}

func (p paced) Publish(ctx context.Context, msgs ...messagebus.Message) error {
	t := time.NewTimer(p.wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return p.Publisher.Publish(ctx, msgs...)
}

func TestRelaySurvivesNATSOutage(t *testing.T) {
	store := sqliteStore(t)
	srv := natstest.Start(t)
	// The shutdown cuts the collector's pull short: messages the server
	// sent it then never arrive and come back only after AckWait (see
	// "Outages" in natsjs). The default 30s is longer than waitFor's 15s.
	broker := natsBroker(t, srv.URL, func(c *natsjs.Config) { c.AckWait = 2 * time.Second })
	got := collect(t, broker, "thing")
	fill(t, store, 20, 100)
	r, _ := startRelay(t, outbox.Config{
		Store: store, Publisher: paced{broker, 10 * time.Millisecond}, Notifier: store, BatchSize: 20,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: quiet,
	})
	waitFor(t, "the drain to start", func() bool { return got.total.Load() > 0 })
	srv.Shutdown()
	stoppedAt, _ := r.Progress(t.Context())
	time.Sleep(3 * time.Second)
	during, _ := r.Progress(t.Context())
	if during.Published > stoppedAt.Published+20 {
		t.Errorf("relay published %d events while the broker was down", during.Published-stoppedAt.Published)
	}
	if during.LastError == nil {
		t.Error("relay reports no error while the broker is down")
	}
	srv.Restart()
	waitFor(t, "2000 deliveries after the restart", func() bool {
		p, _ := r.Progress(t.Context())
		t.Logf("delivered %d, progress %+v", got.total.Load(), p)
		time.Sleep(500 * time.Millisecond)
		return got.total.Load() >= 2000
	})
	time.Sleep(200 * time.Millisecond)
	got.check(t, 20, 100)
	if p, _ := r.Progress(t.Context()); p.Backlog != 0 || p.Published < 2000 {
		t.Errorf("after the outage: %+v", p)
	}
}

// TestRelayOutOfOrderCommits: PostgreSQL transactions draw outbox IDs in one
// order and commit in another; the relay must publish every event anyway.
func TestRelayOutOfOrderCommits(t *testing.T) {
	store := postgresStore(t)
	broker := natsBroker(t, natstest.URL(t))
	got := collect(t, broker, "thing")
	startRelay(t, outbox.Config{Store: store, Publisher: broker, BatchSize: 10, PollInterval: 5 * time.Millisecond, Logger: quiet})

	const writers, perWriter = 16, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				tx, err := store.DB().BeginTx(t.Context(), nil)
				if err != nil {
					t.Error(err)
					return
				}
				e := event.Event{StreamType: "thing", Type: "thing.happened", Data: fmt.Appendf(nil, `{"i":%d}`, i)}
				if _, err := store.AppendTx(t.Context(), tx, fmt.Sprintf("thing-%d", w), event.Any, []event.Event{e}); err != nil {
					t.Error(err)
					_ = tx.Rollback()
					return
				}
				time.Sleep(time.Duration(rand.IntN(5000)) * time.Microsecond)
				if err := tx.Commit(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	waitFor(t, "every committed event", func() bool { return got.total.Load() >= writers*perWriter })
	time.Sleep(200 * time.Millisecond)
	got.check(t, writers, perWriter)
}

// TestRelayMachineNATS relays PostgreSQL to the machine's NATS server.
func TestRelayMachineNATS(t *testing.T) {
	url := natstest.Machine(t)
	store := postgresStore(t)
	broker := natsBroker(t, url)
	got := collect(t, broker, "thing")
	fill(t, store, 5, 40)
	crashThenTakeOver(t, store, broker)
	waitFor(t, "200 deliveries", func() bool { return got.total.Load() >= 200 })
	time.Sleep(200 * time.Millisecond)
	got.check(t, 5, 40)
}

// TestRelayNATSRejectsOversize: a message over the server's limit is
// parked in SQLite with the broker's error; the rest is relayed.
func TestRelayNATSRejectsOversize(t *testing.T) {
	store := sqliteStore(t)
	broker := natsBroker(t, natstest.URL(t))
	got := collect(t, broker, "thing")
	big := event.Event{StreamType: "thing", Type: "thing.huge", Data: make([]byte, 2<<20)}
	big.Data[0], big.Data[len(big.Data)-1] = '"', '"'
	for i := 1; i < len(big.Data)-1; i++ {
		big.Data[i] = 'x'
	}
	if _, err := store.Append(t.Context(), "thing-big", event.NoStream, []event.Event{big}); err != nil {
		t.Fatal(err)
	}
	fill(t, store, 3, 5)
	r, _ := startRelay(t, outbox.Config{Store: store, Publisher: broker, Logger: quiet, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	waitFor(t, "the other 15 events", func() bool { return got.total.Load() == 15 })
	waitFor(t, "the parked event", func() bool { p, _ := r.Progress(t.Context()); return p.Parked == 1 })
	parked, err := store.Parked(t.Context(), 0, 10)
	if err != nil || len(parked) != 1 || parked[0].Event.StreamID != "thing-big" || !strings.Contains(parked[0].Reason, "max_payload") {
		t.Errorf("parked = %+v, %v; want the oversize event with the server's limit named", parked, err)
	}
}
