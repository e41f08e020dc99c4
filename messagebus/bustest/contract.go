package bustest

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/messagebus"
)

func (s *suite) testPublishSubscribe(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("pubsub")
	msgs := messages(tp, []string{"product-1", "product-2"}, 6)
	msgs[0].Headers["Cqrs-Correlation-Id"] = "corr-1"
	msgs[1].Payload = nil
	msgs[2].Key = ""
	msgs[3].Key = "order.42/ü x*>" // not a NATS subject token
	msgs[4].Headers = nil
	before := time.Now().Add(-time.Minute)
	publish(t, b, msgs...)

	r := newRecorder()
	s.subscribe(t, b, tp, "g1", r.handler(nil))
	got := r.waitIDs(t, s.f.Timeout, ids(msgs))
	r.quiet(t, 200*time.Millisecond, len(msgs))

	byID := map[string]messagebus.Delivery{}
	for _, d := range got {
		byID[d.ID] = d
	}
	for _, m := range msgs {
		d := byID[m.ID]
		if d.Topic != m.Topic || d.Key != m.Key || string(d.Payload) != string(m.Payload) {
			t.Errorf("delivery %s = topic %q key %q payload %q, want %q %q %q", m.ID, d.Topic, d.Key, d.Payload, m.Topic, m.Key, m.Payload)
		}
		if !maps.Equal(d.Headers, m.Headers) {
			t.Errorf("delivery %s headers = %v, want %v", m.ID, d.Headers, m.Headers)
		}
		if d.Attempt != 1 {
			t.Errorf("delivery %s Attempt = %d, want 1", m.ID, d.Attempt)
		}
		if d.PublishedAt.Before(before) || d.PublishedAt.After(time.Now().Add(time.Minute)) {
			t.Errorf("delivery %s PublishedAt = %v, want about now", m.ID, d.PublishedAt)
		}
	}
}

func (s *suite) testPublishNothing(t *testing.T) {
	b := s.newBroker(t)
	if err := b.Publish(t.Context()); err != nil {
		t.Fatalf("Publish() with no messages = %v, want nil", err)
	}
}

func (s *suite) testSubscribeThenPublish(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("live")
	r := newRecorder()
	s.subscribe(t, b, tp, "g1", r.handler(nil))
	msgs := messages(tp, []string{"k"}, 3)
	publish(t, b, msgs...)
	r.waitIDs(t, s.f.Timeout, ids(msgs))
}

func (s *suite) testMetadataHeaders(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("meta")
	md := event.Metadata{
		CorrelationID: "corr-42",
		CausationID:   "cmd-7",
		TraceParent:   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		TraceState:    "vendor=1",
		Extra:         map[string]string{"Tenant": "acme"},
	}
	m := messagebus.Message{ID: uuid.NewString(), Topic: tp, Key: "order-1", Payload: []byte("{}"), Headers: md.Headers()}
	publish(t, b, m)
	r := newRecorder()
	s.subscribe(t, b, tp, "g1", r.handler(nil))
	got := r.waitIDs(t, s.f.Timeout, []string{m.ID})
	back := event.MetadataFromHeaders(got[0].Headers)
	if back.CorrelationID != md.CorrelationID || back.CausationID != md.CausationID ||
		back.TraceParent != md.TraceParent || back.TraceState != md.TraceState || !maps.Equal(back.Extra, md.Extra) {
		t.Fatalf("metadata after the broker = %+v, want %+v", back, md)
	}
}

func (s *suite) testAckedNotRedelivered(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("ack")
	msgs := messages(tp, []string{"a", "b"}, 10)
	publish(t, b, msgs...)
	r := newRecorder()
	sub := s.subscribe(t, b, tp, "g1", r.handler(nil))
	r.waitIDs(t, s.f.Timeout, ids(msgs))
	r.quiet(t, time.Second, len(msgs))
	stop(t, sub)

	// A new member of the group sees only what comes after.
	marker := messages(tp, []string{"a"}, 1)
	publish(t, b, marker...)
	r2 := newRecorder()
	s.subscribe(t, b, tp, "g1", r2.handler(nil))
	got := r2.waitIDs(t, s.f.Timeout, ids(marker))
	r2.quiet(t, 300*time.Millisecond, len(got))
	if len(got) != 1 {
		t.Fatalf("after restart got %d deliveries, want only the new message: %s", len(got), describe(got))
	}
}

func (s *suite) testRedeliveryAfterError(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("redeliver")
	msgs := messages(tp, []string{"k"}, 1)
	publish(t, b, msgs...)
	r := newRecorder()
	fail := errors.New("transient failure")
	s.subscribe(t, b, tp, "g1", r.handler(func(d messagebus.Delivery) error {
		if d.Attempt < 3 {
			return fail
		}
		return nil
	}), messagebus.WithRetryDelay(50*time.Millisecond))
	got := r.wait(t, s.f.Timeout, "3 attempts", func(ds []messagebus.Delivery) bool { return len(ds) >= 3 })
	for i, d := range got {
		if d.ID != msgs[0].ID || d.Attempt != i+1 {
			t.Fatalf("delivery %d = id %s attempt %d, want id %s attempt %d", i, d.ID, d.Attempt, msgs[0].ID, i+1)
		}
		if i > 0 && !maps.Equal(d.Headers, msgs[0].Headers) {
			t.Fatalf("redelivered headers = %v, want %v", d.Headers, msgs[0].Headers)
		}
	}
	r.quiet(t, 500*time.Millisecond, 3)
}

func (s *suite) testRetryAfterDelay(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("retryafter")
	msgs := messages(tp, []string{"k"}, 1)
	publish(t, b, msgs...)
	const delay = 400 * time.Millisecond
	var mu sync.Mutex
	var times []time.Time
	r := newRecorder()
	// The time is taken before the recorder sees the delivery, so once the
	// recorder has two, so has times.
	s.subscribe(t, b, tp, "g1", func(_ context.Context, d messagebus.Delivery) error {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		r.add(d)
		if d.Attempt == 1 {
			return messagebus.RetryAfter(errors.New("not yet"), delay)
		}
		return nil
	}, messagebus.WithRetryDelay(time.Millisecond))
	r.wait(t, s.f.Timeout, "2 attempts", func(ds []messagebus.Delivery) bool { return len(ds) >= 2 })
	mu.Lock()
	defer mu.Unlock()
	// The delay is a lower bound the broker must honour (never early).
	if gap := times[1].Sub(times[0]); gap < delay-50*time.Millisecond {
		t.Fatalf("redelivered after %s, want at least the %s asked for with RetryAfter", gap, delay)
	}
}

func (s *suite) testHandlerPanic(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("panic")
	msgs := messages(tp, []string{"k"}, 1)
	publish(t, b, msgs...)
	r := newRecorder()
	s.subscribe(t, b, tp, "g1", r.handler(func(d messagebus.Delivery) error {
		if d.Attempt == 1 {
			panic("handler bug")
		}
		return nil
	}), messagebus.WithRetryDelay(10*time.Millisecond))
	got := r.wait(t, s.f.Timeout, "2 attempts", func(ds []messagebus.Delivery) bool { return len(ds) >= 2 })
	if got[1].Attempt != 2 {
		t.Fatalf("after a panic, Attempt = %d, want 2", got[1].Attempt)
	}
}

func (s *suite) testMaxDeliveries(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("maxdeliver")
	msgs := messages(tp, []string{"poison", "fine"}, 2)
	publish(t, b, msgs...)
	poison := msgs[0].ID
	fail := errors.New("permanent failure")

	type gaveUp struct {
		d   messagebus.Delivery
		err error
	}
	hook := make(chan gaveUp, 10)
	r := newRecorder()
	s.subscribe(t, b, tp, "g1", r.handler(func(d messagebus.Delivery) error {
		if d.ID == poison {
			return fail
		}
		return nil
	}),
		messagebus.WithMaxDeliveries(3),
		messagebus.WithRetryDelay(20*time.Millisecond),
		messagebus.WithGiveUp(func(_ context.Context, d messagebus.Delivery, err error) { hook <- gaveUp{d, err} }),
	)
	select {
	case g := <-hook:
		if g.d.ID != poison || g.d.Attempt != 3 || !errors.Is(g.err, fail) {
			t.Fatalf("give-up hook got id %s attempt %d err %v, want id %s attempt 3 err %v", g.d.ID, g.d.Attempt, g.err, poison, fail)
		}
	case <-time.After(s.f.Timeout):
		t.Fatal("give-up hook not called")
	}
	r.waitIDs(t, s.f.Timeout, []string{msgs[1].ID})
	time.Sleep(500 * time.Millisecond)
	if n := countByID(r.all())[poison]; n != 3 {
		t.Fatalf("poison message delivered %d times, want 3 (max deliveries)", n)
	}
	select {
	case g := <-hook:
		t.Fatalf("give-up hook called again for %s", g.d.ID)
	default:
	}
}
