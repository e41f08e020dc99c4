package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/messagebus"
	busmem "github.com/cqrskit/cqrskit/messagebus/memory"
	"github.com/cqrskit/cqrskit/outbox"
	"github.com/cqrskit/cqrskit/store/memory"
)

// collector subscribes to topic and records what arrives, per stream.
type collector struct {
	mu       sync.Mutex
	byStream map[string][]int64
	ids      map[string]int
	total    atomic.Int64
}

func collect(t *testing.T, b messagebus.Subscriber, topic string) *collector {
	t.Helper()
	c := &collector{byStream: map[string][]int64{}, ids: map[string]int{}}
	sub, err := b.Subscribe(t.Context(), topic, "collector", func(_ context.Context, d messagebus.Delivery) error {
		e, err := envelope.Event(d.Message)
		if err != nil {
			t.Errorf("delivered message is not an event: %v", err)
			return nil
		}
		c.mu.Lock()
		c.byStream[e.StreamID] = append(c.byStream[e.StreamID], e.Version)
		c.ids[d.ID]++
		c.mu.Unlock()
		c.total.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Stop(context.Background()) })
	return c
}

// check asserts every stream arrived complete, in order, each event once.
func (c *collector) check(t *testing.T, streams, perStream int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byStream) != streams {
		t.Errorf("received %d streams, want %d", len(c.byStream), streams)
	}
	for s, vs := range c.byStream {
		want := make([]int64, perStream)
		for i := range want {
			want[i] = int64(i + 1)
		}
		if !slices.Equal(vs, want) {
			t.Errorf("stream %s arrived as versions %v, want 1..%d in order", s, vs, perStream)
		}
	}
	for id, n := range c.ids {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fill(t *testing.T, s event.Store, streams, perStream int) {
	t.Helper()
	for i := range perStream {
		for st := range streams {
			e := event.Event{StreamType: "thing", Type: "thing.happened", Data: fmt.Appendf(nil, `{"i":%d}`, i)}
			if _, err := s.Append(t.Context(), fmt.Sprintf("thing-%d", st), event.Any, []event.Event{e}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func newBroker(t *testing.T, cfg busmem.Config) *busmem.Broker {
	t.Helper()
	b, err := busmem.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// startRelay runs a relay until the test ends; stop cancels it and returns
// Run's result.
func startRelay(t *testing.T, cfg outbox.Config) (r *outbox.Relay, stop func() error) {
	t.Helper()
	r, err := outbox.NewRelay(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stop = sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() { _ = stop() })
	return r, stop
}

func TestRelayDeliversEverythingInStreamOrder(t *testing.T) {
	store := memory.New()
	broker := newBroker(t, busmem.Config{})
	got := collect(t, broker, "thing")
	fill(t, store, 10, 30)
	r, _ := startRelay(t, outbox.Config{Store: store, Publisher: broker, Notifier: store, BatchSize: 7})
	waitFor(t, "300 deliveries", func() bool { return got.total.Load() == 300 })
	got.check(t, 10, 30)
	waitFor(t, "an empty outbox", func() bool {
		p, err := r.Progress(t.Context())
		return err == nil && p.Backlog == 0 && p.Published == 300
	})
	p, _ := r.Progress(t.Context())
	if !p.Active || p.OldestAge() != 0 || p.LastError != nil {
		t.Errorf("progress after drain = %+v", p)
	}
}

func TestRelayWakesOnNotifyWithoutPolling(t *testing.T) {
	store := memory.New()
	broker := newBroker(t, busmem.Config{})
	got := collect(t, broker, "thing")
	startRelay(t, outbox.Config{Store: store, Publisher: broker, Notifier: store, PollInterval: time.Hour})
	time.Sleep(50 * time.Millisecond) // let the relay go idle
	fill(t, store, 1, 1)
	// The poll interval is an hour: only the notification can deliver this.
	waitFor(t, "the event after a notification", func() bool { return got.total.Load() == 1 })
}

// flaky fails the first n Publish calls as if the broker were down.
type flaky struct {
	outbox.Publisher
	n     atomic.Int64
	calls atomic.Int64
}

func (f *flaky) Publish(ctx context.Context, msgs ...messagebus.Message) error {
	f.calls.Add(1)
	if f.n.Add(-1) >= 0 {
		return fmt.Errorf("dial broker: %w", messagebus.ErrUnavailable)
	}
	return f.Publisher.Publish(ctx, msgs...)
}

func TestRelayBacksOffAndResumesAfterBrokerOutage(t *testing.T) {
	store := memory.New()
	broker := newBroker(t, busmem.Config{})
	got := collect(t, broker, "thing")
	fill(t, store, 3, 10)
	pub := &flaky{Publisher: broker}
	pub.n.Store(4)
	start := time.Now()
	r, _ := startRelay(t, outbox.Config{Store: store, Publisher: pub, MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	waitFor(t, "all events after the outage", func() bool { return got.total.Load() == 30 })
	got.check(t, 3, 10)
	// Four failures with backoff of at least 20ms*0.8, 40ms*0.8, then 50ms*0.8 twice.
	if elapsed := time.Since(start); elapsed < 100*time.Millisecond {
		t.Errorf("recovered after %v: the relay did not back off", elapsed)
	}
	p, _ := r.Progress(t.Context())
	if p.Failed != 4*30 || p.Published != 30 {
		t.Errorf("progress = %+v, want 120 failed attempts and 30 published", p)
	}
}

// crashingStore fails Delete like a process killed after the broker's ack.
type crashingStore struct {
	outbox.Store
	fail atomic.Int64
}

func (s *crashingStore) Delete(ctx context.Context, ids []int64) error {
	if s.fail.Add(-1) >= 0 {
		return errors.New("killed between publish and delete")
	}
	return s.Store.Delete(ctx, ids)
}

func TestRelayCrashBetweenPublishAndDeleteLosesAndDuplicatesNothing(t *testing.T) {
	store := memory.New()
	broker := newBroker(t, busmem.Config{})
	got := collect(t, broker, "thing")
	fill(t, store, 4, 25)
	cs := &crashingStore{Store: store}
	cs.fail.Store(3)
	// First relay "crashes" three times after publishing; every batch is
	// republished and the broker drops the duplicates.
	startRelay(t, outbox.Config{Store: cs, Publisher: broker, BatchSize: 30, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	waitFor(t, "100 deliveries and an empty outbox", func() bool {
		st, _ := store.Stats(t.Context())
		return got.total.Load() == 100 && st.Backlog == 0
	})
	time.Sleep(50 * time.Millisecond) // any late duplicate would arrive now
	got.check(t, 4, 25)
}

func TestRelayKeepsRejectedRowAndGoesOn(t *testing.T) {
	store := memory.New()
	broker := newBroker(t, busmem.Config{MaxMessageBytes: 4096})
	got := collect(t, broker, "thing")
	big := event.Event{StreamType: "thing", Type: "thing.huge", Data: []byte(`"` + strings.Repeat("x", 8000) + `"`)}
	if _, err := store.Append(t.Context(), "thing-big", event.NoStream, []event.Event{big}); err != nil {
		t.Fatal(err)
	}
	small := event.Event{StreamType: "thing", Type: "thing.small", Data: []byte(`{}`)}
	if _, err := store.Append(t.Context(), "thing-big", event.Exactly(1), []event.Event{small}); err != nil {
		t.Fatal(err)
	}
	fill(t, store, 2, 5)
	r, _ := startRelay(t, outbox.Config{Store: store, Publisher: broker, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	waitFor(t, "the other streams", func() bool { return got.total.Load() == 10 })
	time.Sleep(50 * time.Millisecond)
	st, err := store.Stats(t.Context())
	if err != nil || st.Backlog != 1 || st.Parked != 1 {
		t.Fatalf("outbox stats = %+v, %v; want the rejected event parked and the one after it waiting", st, err)
	}
	got.mu.Lock()
	if vs := got.byStream["thing-big"]; len(vs) != 0 {
		t.Errorf("stream behind a rejected event delivered %v; its order must hold", vs)
	}
	got.mu.Unlock()
	p, _ := r.Progress(t.Context())
	parked, _ := store.Parked(t.Context(), 0, 10)
	if p.ParkedByRelay != 1 || len(parked) != 1 || !strings.Contains(parked[0].Reason, "too large") {
		t.Errorf("parked by relay = %d, parked = %+v; want the big event parked with the broker's reason", p.ParkedByRelay, parked)
	}
}

func TestRelayHotStandbyTakesOver(t *testing.T) {
	store := memory.New()
	broker := newBroker(t, busmem.Config{})
	got := collect(t, broker, "thing")
	leader := &outbox.LocalLeader{}
	cfg := outbox.Config{Store: store, Publisher: broker, Leader: leader, Notifier: store, StandbyInterval: 10 * time.Millisecond}
	r1, stop1 := startRelay(t, cfg)
	waitFor(t, "the first relay to lead", func() bool { p, _ := r1.Progress(t.Context()); return p.Active })
	r2, _ := startRelay(t, cfg)
	fill(t, store, 2, 5)
	waitFor(t, "10 deliveries", func() bool { return got.total.Load() == 10 })
	if p, _ := r2.Progress(t.Context()); p.Active || p.Published != 0 {
		t.Fatalf("standby relay was active while the leader ran: %+v", p)
	}
	if err := stop1(); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	fill(t, store, 2, 5)
	waitFor(t, "the standby to take over and deliver", func() bool { return got.total.Load() == 20 })
	if p, _ := r2.Progress(t.Context()); !p.Active || p.Published != 10 {
		t.Errorf("standby after take-over: %+v", p)
	}
}

func TestNewRelayValidatesConfig(t *testing.T) {
	store := memory.New()
	broker := newBroker(t, busmem.Config{})
	cases := []struct {
		name string
		cfg  outbox.Config
		want []string
	}{
		{"missing store and publisher", outbox.Config{}, []string{"Config.Store is required", "Config.Publisher is required"}},
		{"negative batch", outbox.Config{Store: store, Publisher: broker, BatchSize: -1}, []string{"Config.BatchSize = -1"}},
		{"backoff bounds", outbox.Config{Store: store, Publisher: broker, MinBackoff: time.Second, MaxBackoff: time.Millisecond}, []string{"MinBackoff 1s exceeds MaxBackoff 1ms"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := outbox.NewRelay(tc.cfg)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestRelayParksRowWithRejectedTopicAndGoesOn(t *testing.T) {
	store := memory.New()
	broker := newBroker(t, busmem.Config{})
	got := collect(t, broker, "thing")
	if _, err := store.Append(t.Context(), "odd-1", event.NoStream, []event.Event{{StreamType: "thing", Type: "thing.odd", Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	fill(t, store, 2, 5)
	topic := func(e event.Event) string {
		if e.StreamID == "odd-1" {
			return "bad type!"
		}
		return outbox.DefaultTopic(e)
	}
	r, _ := startRelay(t, outbox.Config{Store: store, Publisher: broker, Topic: topic, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	waitFor(t, "the valid events", func() bool { return got.total.Load() == 10 })
	waitFor(t, "the parked row", func() bool { p, _ := r.Progress(t.Context()); return p.Parked == 1 })
	p, _ := r.Progress(t.Context())
	if p.Backlog != 0 || p.ParkedByRelay != 1 {
		t.Errorf("backlog = %d, parked by relay = %d; want 0 and 1", p.Backlog, p.ParkedByRelay)
	}
	parked, err := store.Parked(t.Context(), 0, 10)
	if err != nil || len(parked) != 1 || parked[0].Event.StreamID != "odd-1" || !strings.Contains(parked[0].Reason, `"bad type!"`) {
		t.Fatalf("parked = %+v, %v; want the odd-1 row with the broker's error naming the topic", parked, err)
	}
}

// versions returns the versions of stream received so far, in order.
func (c *collector) versions(stream string) []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.byStream[stream])
}
