package bustest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/messagebus"
)

// Features describes a broker's guarantees beyond the common contract.
type Features struct {
	// Dedup: a message whose ID the broker stored within its duplicate
	// window is dropped (NATS JetStream, memory). Without it a republished
	// message is delivered again with the same ID (Kafka).
	Dedup bool
	// OrderedRetry: a failed message is retried before any later message
	// with its key is handled, so per-key order survives handler errors.
	OrderedRetry bool
	// MaxMessageBytes is the broker's message size limit. Required.
	MaxMessageBytes int
	// Timeout bounds each wait for deliveries. Defaults to 30 seconds.
	Timeout time.Duration
}

// NewBroker returns a fresh broker for one test and closes it in
// t.Cleanup. Brokers of different tests must not share topics' messages
// or groups (the suite uses unique topic names, which is enough for
// brokers that share a server).
type NewBroker func(t *testing.T) messagebus.Broker

// Run runs the contract. Subtests run in parallel.
func Run(t *testing.T, f Features, newBroker NewBroker) {
	if f.MaxMessageBytes <= 0 {
		t.Fatal("bustest: Features.MaxMessageBytes is required")
	}
	if f.Timeout <= 0 {
		f.Timeout = 30 * time.Second
	}
	s := &suite{f: f, newBroker: newBroker}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"PublishSubscribe", s.testPublishSubscribe},
		{"PublishNothing", s.testPublishNothing},
		{"SubscribeThenPublish", s.testSubscribeThenPublish},
		{"MetadataHeaders", s.testMetadataHeaders},
		{"AckedNotRedelivered", s.testAckedNotRedelivered},
		{"RedeliveryAfterError", s.testRedeliveryAfterError},
		{"RetryAfterDelay", s.testRetryAfterDelay},
		{"HandlerPanic", s.testHandlerPanic},
		{"MaxDeliveries", s.testMaxDeliveries},
		{"PerKeyOrder", s.testPerKeyOrder},
		{"PerKeyOrderAcrossRetries", s.testPerKeyOrderAcrossRetries},
		{"ConcurrentPerKeyOrder", s.testConcurrentPerKeyOrder},
		{"ConcurrencyBlockedKey", s.testConcurrencyBlockedKey},
		{"DuplicateID", s.testDuplicateID},
		{"GroupDurability", s.testGroupDurability},
		{"GroupsIndependent", s.testGroupsIndependent},
		{"GroupShared", s.testGroupShared},
		{"StopWaitsForHandler", s.testStopWaitsForHandler},
		{"StopDeadlineCancelsHandler", s.testStopDeadline},
		{"ContextEndsSubscription", s.testContextEndsSubscription},
		{"LargeMessage", s.testLargeMessage},
		{"InvalidTopic", s.testInvalidTopic},
		{"InvalidMessage", s.testInvalidMessage},
		{"InvalidSubscribe", s.testInvalidSubscribe},
		{"PublishCancelledContext", s.testPublishCancelled},
		{"Closed", s.testClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t)
		})
	}
}

type suite struct {
	f         Features
	newBroker NewBroker
}

// topic returns a topic name unique to this run.
func topic(prefix string) string {
	return prefix + "-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
}

// messages returns n messages with keys cycling through keys; Headers
// "Seq" is the message's index within its key.
func messages(topic string, keys []string, n int) []messagebus.Message {
	out := make([]messagebus.Message, n)
	seq := map[string]int{}
	for i := range out {
		k := keys[i%len(keys)]
		out[i] = messagebus.Message{
			ID:      uuid.NewString(),
			Topic:   topic,
			Key:     k,
			Payload: []byte(fmt.Sprintf(`{"key":%q,"seq":%d}`, k, seq[k])),
			Headers: map[string]string{"Seq": strconv.Itoa(seq[k])},
		}
		seq[k]++
	}
	return out
}

func ids(ms []messagebus.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// recorder collects deliveries.
type recorder struct {
	mu      sync.Mutex
	ds      []messagebus.Delivery
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) add(d messagebus.Delivery) {
	r.mu.Lock()
	r.ds = append(r.ds, d)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// handler records every delivery, then returns what fn returns (nil fn:
// success).
func (r *recorder) handler(fn func(d messagebus.Delivery) error) messagebus.Handler {
	return func(_ context.Context, d messagebus.Delivery) error {
		r.add(d)
		if fn == nil {
			return nil
		}
		return fn(d)
	}
}

func (r *recorder) all() []messagebus.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ds)
}

// wait waits until cond holds for the deliveries so far.
func (r *recorder) wait(t *testing.T, timeout time.Duration, what string, cond func([]messagebus.Delivery) bool) []messagebus.Delivery {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ds, changed := slices.Clone(r.ds), r.changed
		r.mu.Unlock()
		if cond(ds) {
			return ds
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s; got %d deliveries", timeout, what, len(ds))
		}
	}
}

// waitIDs waits until every id was delivered at least once.
func (r *recorder) waitIDs(t *testing.T, timeout time.Duration, want []string) []messagebus.Delivery {
	t.Helper()
	return r.wait(t, timeout, fmt.Sprintf("%d messages", len(want)), func(ds []messagebus.Delivery) bool {
		seen := make(map[string]bool, len(ds))
		for _, d := range ds {
			seen[d.ID] = true
		}
		for _, id := range want {
			if !seen[id] {
				return false
			}
		}
		return true
	})
}

func (s *suite) subscribe(t *testing.T, b messagebus.Broker, topic, group string, h messagebus.Handler, opts ...messagebus.SubscribeOption) messagebus.Subscription {
	t.Helper()
	sub, err := b.Subscribe(t.Context(), topic, group, h, opts...)
	if err != nil {
		t.Fatalf("Subscribe(%q, %q): %v", topic, group, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sub.Stop(ctx)
	})
	return sub
}

func stop(t *testing.T, sub messagebus.Subscription) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := sub.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := sub.Err(); err != nil {
		t.Fatalf("Err after Stop = %v, want nil", err)
	}
}

func publish(t *testing.T, b messagebus.Publisher, msgs ...messagebus.Message) {
	t.Helper()
	if err := b.Publish(t.Context(), msgs...); err != nil {
		t.Fatalf("Publish(%d messages): %v", len(msgs), err)
	}
}

// quiet waits d and fails if anything more than want deliveries arrived.
func (r *recorder) quiet(t *testing.T, d time.Duration, want int) {
	t.Helper()
	time.Sleep(d)
	if got := r.all(); len(got) != want {
		t.Fatalf("got %d deliveries after waiting %s, want %d: %s", len(got), d, want, describe(got[min(want, len(got)):]))
	}
}

func describe(ds []messagebus.Delivery) string {
	parts := make([]string, 0, len(ds))
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("%s key=%s seq=%s attempt=%d", d.ID, d.Key, d.Headers["Seq"], d.Attempt))
	}
	return strings.Join(parts, "; ")
}

func countByID(ds []messagebus.Delivery) map[string]int {
	n := map[string]int{}
	for _, d := range ds {
		n[d.ID]++
	}
	return n
}
