package bustest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/messagebus"
)

// testConcurrentPerKeyOrder: with WithConcurrency, messages of different
// keys are handled at the same time, each key's in order, also when some
// fail and are retried.
func (s *suite) testConcurrentPerKeyOrder(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("concurrent")
	const keys, perKey = 13, 40 // 13: no lane count divides it
	var ks []string
	for i := range keys {
		ks = append(ks, fmt.Sprintf("stream-%02d", i))
	}
	msgs := messages(tp, ks, keys*perKey)
	var mu sync.Mutex
	var ok []messagebus.Delivery
	var running, most int
	all := make(chan struct{})
	s.subscribe(t, b, tp, "g1", func(_ context.Context, d messagebus.Delivery) error {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		// Long enough for the lanes to overlap, and uneven, so that a key
		// split over lanes would be reordered.
		seq, _ := strconv.Atoi(d.Headers["Seq"])
		time.Sleep(time.Duration(1+seq%3) * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		running--
		if s.f.OrderedRetry && seq%9 == 4 && d.Attempt == 1 {
			return errors.New("fails once")
		}
		if ok = append(ok, d); len(ok) == len(msgs) {
			close(all)
		}
		return nil
	}, messagebus.WithConcurrency(8), messagebus.WithRetryDelay(5*time.Millisecond))
	for batch := range slices.Chunk(msgs, 200) {
		publish(t, b, batch...)
	}
	select {
	case <-all:
	case <-time.After(s.f.Timeout):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("timed out after %s: %d of %d messages handled", s.f.Timeout, len(ok), len(msgs))
	}
	mu.Lock()
	defer mu.Unlock()
	checkOrder(t, ok, perKey)
	if most < 2 {
		t.Fatalf("at most %d message(s) in the handler at once with WithConcurrency(8) over %d keys, want several", most, keys)
	}
}

// testConcurrencyBlockedKey: while one key's message is in the handler,
// the messages of other keys fetched with it are handled: its first
// message waits until another key's message runs at the same time, which a
// subscription handling one message at a time never does.
func (s *suite) testConcurrencyBlockedKey(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("lanes")
	var ks []string
	for i := range 8 {
		ks = append(ks, fmt.Sprintf("stream-%d", i))
	}
	msgs := messages(tp, ks, len(ks)*10)
	publish(t, b, msgs...) // before subscribing: one fetch holds them all
	// Until the first key's first message is in the handler, each other
	// message waits for it a little: a busy machine, or a broker that
	// hands out partitions in any order, must not run them all before it
	// and hide the overlap. The wait is short, because a message of
	// another key may be ahead of it in its lane.
	var inFirst atomic.Bool
	started, overlapped := make(chan struct{}), make(chan struct{})
	var startOnce, overlapOnce sync.Once
	r := newRecorder()
	s.subscribe(t, b, tp, "g1", r.handler(func(d messagebus.Delivery) error {
		if d.Key != ks[0] {
			select {
			case <-started:
			case <-overlapped:
			case <-time.After(50 * time.Millisecond):
			}
			if inFirst.Load() {
				overlapOnce.Do(func() { close(overlapped) })
			}
			return nil
		}
		if d.Headers["Seq"] == "0" {
			inFirst.Store(true)
			startOnce.Do(func() { close(started) })
			defer inFirst.Store(false)
			select {
			case <-overlapped:
			case <-time.After(s.f.Timeout):
			}
		}
		return nil
	}), messagebus.WithConcurrency(4))
	select {
	case <-overlapped:
	case <-time.After(s.f.Timeout):
		t.Fatalf("no other key's message was handled while %s's first one was in the handler (WithConcurrency(4), 8 keys); deliveries: %s",
			ks[0], describe(r.all()))
	}
	r.waitIDs(t, s.f.Timeout, ids(msgs))
}
