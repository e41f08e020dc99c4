package bustest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/messagebus"
)

// checkOrder fails if any key's "Seq" headers are not 0, 1, 2, ... in
// delivery order, counting only deliveries accepted by keep.
func checkOrder(t *testing.T, ds []messagebus.Delivery, perKey int) {
	t.Helper()
	next := map[string]int{}
	for _, d := range ds {
		seq, _ := strconv.Atoi(d.Headers["Seq"])
		if seq != next[d.Key] {
			t.Fatalf("key %s: got seq %d, want %d (attempt %d)", d.Key, seq, next[d.Key], d.Attempt)
		}
		next[d.Key]++
	}
	for k, n := range next {
		if n != perKey {
			t.Fatalf("key %s: %d messages, want %d", k, n, perKey)
		}
	}
}

func (s *suite) testPerKeyOrder(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("order")
	const keys, perKey = 20, 100
	var ks []string
	for i := range keys {
		ks = append(ks, fmt.Sprintf("stream-%02d", i))
	}
	msgs := messages(tp, ks, keys*perKey)
	r := newRecorder()
	s.subscribe(t, b, tp, "g1", r.handler(nil))
	// Several pipelined batches, interleaving keys, while consuming.
	for batch := range slices.Chunk(msgs, 250) {
		publish(t, b, batch...)
	}
	got := r.waitIDs(t, s.f.Timeout, ids(msgs))
	checkOrder(t, got, perKey)
}

func (s *suite) testPerKeyOrderAcrossRetries(t *testing.T) {
	if !s.f.OrderedRetry {
		t.Skip("broker does not keep per-key order across handler errors (Features.OrderedRetry)")
	}
	b := s.newBroker(t)
	tp := topic("orderretry")
	const keys, perKey = 5, 20
	var ks []string
	for i := range keys {
		ks = append(ks, fmt.Sprintf("stream-%d", i))
	}
	msgs := messages(tp, ks, keys*perKey)
	publish(t, b, msgs...)
	var mu sync.Mutex
	var ok []messagebus.Delivery
	r := newRecorder()
	s.subscribe(t, b, tp, "g1", r.handler(func(d messagebus.Delivery) error {
		seq, _ := strconv.Atoi(d.Headers["Seq"])
		if seq%7 == 3 && d.Attempt == 1 {
			return errors.New("fails once")
		}
		mu.Lock()
		ok = append(ok, d)
		mu.Unlock()
		return nil
	}), messagebus.WithRetryDelay(10*time.Millisecond))
	r.waitIDs(t, s.f.Timeout, ids(msgs))
	r.wait(t, s.f.Timeout, "every message handled", func([]messagebus.Delivery) bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ok) >= len(msgs)
	})
	mu.Lock()
	defer mu.Unlock()
	checkOrder(t, ok, perKey)
}

func (s *suite) testDuplicateID(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("dedup")
	msgs := messages(tp, []string{"k"}, 2)
	dup, marker := msgs[0], msgs[1]
	publish(t, b, dup)
	publish(t, b, dup) // a relay republishing after a lost ack
	publish(t, b, marker)
	r := newRecorder()
	s.subscribe(t, b, tp, "g1", r.handler(nil))
	got := r.waitIDs(t, s.f.Timeout, []string{dup.ID, marker.ID})
	want := 1
	if !s.f.Dedup {
		want = 2
		got = r.wait(t, s.f.Timeout, "the duplicate twice", func(ds []messagebus.Delivery) bool { return countByID(ds)[dup.ID] >= 2 })
	}
	r.quiet(t, 300*time.Millisecond, len(got))
	if n := countByID(got)[dup.ID]; n != want {
		t.Fatalf("message published twice with one ID delivered %d times, want %d", n, want)
	}
	for _, d := range got {
		if d.ID == dup.ID && string(d.Payload) != string(dup.Payload) {
			t.Fatalf("duplicate delivered with payload %q, want %q", d.Payload, dup.Payload)
		}
	}
}
