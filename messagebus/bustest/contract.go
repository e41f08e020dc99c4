package bustest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

func (s *suite) testGroupDurability(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("durable")
	first := messages(tp, []string{"a", "b"}, 10)
	publish(t, b, first...)
	r := newRecorder()
	sub := s.subscribe(t, b, tp, "g1", r.handler(nil))
	r.waitIDs(t, s.f.Timeout, ids(first))
	stop(t, sub)

	second := messages(tp, []string{"a", "b"}, 10)
	publish(t, b, second...) // while the group has no member
	r2 := newRecorder()
	s.subscribe(t, b, tp, "g1", r2.handler(nil))
	got := r2.waitIDs(t, s.f.Timeout, ids(second))
	r2.quiet(t, 300*time.Millisecond, len(got))
	if len(got) != len(second) {
		t.Fatalf("restarted group got %d deliveries, want exactly the %d published while it was stopped: %s", len(got), len(second), describe(got))
	}
}

func (s *suite) testGroupsIndependent(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("groups")
	msgs := messages(tp, []string{"a"}, 5)
	publish(t, b, msgs...)
	r1, r2 := newRecorder(), newRecorder()
	s.subscribe(t, b, tp, "g1", r1.handler(nil))
	s.subscribe(t, b, tp, "g2", r2.handler(nil))
	r1.waitIDs(t, s.f.Timeout, ids(msgs))
	r2.waitIDs(t, s.f.Timeout, ids(msgs))
}

func (s *suite) testGroupShared(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("shared")
	r := newRecorder()
	s.subscribe(t, b, tp, "g1", r.handler(nil))
	s.subscribe(t, b, tp, "g1", r.handler(nil))
	msgs := messages(tp, []string{"a", "b", "c", "d"}, 40)
	publish(t, b, msgs...)
	got := r.waitIDs(t, s.f.Timeout, ids(msgs))
	r.quiet(t, 500*time.Millisecond, len(got))
	for id, n := range countByID(got) {
		if n != 1 {
			t.Fatalf("message %s handled %d times by one group's members, want once", id, n)
		}
	}
}

func (s *suite) testStopWaitsForHandler(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("stopwait")
	msgs := messages(tp, []string{"k"}, 2)
	publish(t, b, msgs[0])
	started := make(chan struct{})
	release := make(chan struct{})
	r := newRecorder()
	sub := s.subscribe(t, b, tp, "g1", r.handler(func(messagebus.Delivery) error {
		close(started)
		<-release
		return nil
	}))
	select {
	case <-started:
	case <-time.After(s.f.Timeout):
		t.Fatal("handler not called")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- sub.Stop(t.Context()) }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while the handler was still running", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop = %v", err)
		}
	case <-time.After(s.f.Timeout):
		t.Fatal("Stop did not return after the handler finished")
	}
	<-sub.Done()

	// The message in hand was acknowledged: the group continues after it.
	publish(t, b, msgs[1])
	r2 := newRecorder()
	s.subscribe(t, b, tp, "g1", r2.handler(nil))
	got := r2.waitIDs(t, s.f.Timeout, []string{msgs[1].ID})
	r2.quiet(t, 300*time.Millisecond, len(got))
	if n := countByID(got)[msgs[0].ID]; n != 0 {
		t.Fatalf("message handled before Stop delivered again %d times", n)
	}
}

func (s *suite) testStopDeadline(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("stopdeadline")
	publish(t, b, messages(tp, []string{"k"}, 1)...)
	started := make(chan struct{})
	cancelled := make(chan struct{})
	sub := s.subscribe(t, b, tp, "g1", func(ctx context.Context, _ messagebus.Delivery) error {
		select {
		case <-started:
		default:
			close(started)
		}
		<-ctx.Done()
		select {
		case <-cancelled:
		default:
			close(cancelled)
		}
		return ctx.Err()
	})
	select {
	case <-started:
	case <-time.After(s.f.Timeout):
		t.Fatal("handler not called")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := sub.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop with an expiring context = %v, want context.DeadlineExceeded", err)
	}
	select {
	case <-cancelled:
	case <-time.After(s.f.Timeout):
		t.Fatal("handler's context not cancelled after Stop's deadline")
	}
	select {
	case <-sub.Done():
	case <-time.After(s.f.Timeout):
		t.Fatal("subscription did not end")
	}
}

func (s *suite) testContextEndsSubscription(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("ctx")
	ctx, cancel := context.WithCancel(t.Context())
	sub, err := b.Subscribe(ctx, tp, "g1", func(context.Context, messagebus.Delivery) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-sub.Done():
	case <-time.After(s.f.Timeout):
		t.Fatal("subscription did not end when its context was cancelled")
	}
	if err := sub.Err(); err != nil {
		t.Fatalf("Err after context cancellation = %v, want nil", err)
	}
}

func (s *suite) testLargeMessage(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("large")
	msgs := messages(tp, []string{"a", "big", "c", "big"}, 4)
	msgs[1].Payload = make([]byte, s.f.MaxMessageBytes+1)
	err := b.Publish(t.Context(), msgs...)
	var pe *messagebus.PublishError
	if !errors.As(err, &pe) {
		t.Fatalf("Publish with an oversized message = %v, want a *PublishError", err)
	}
	if got := pe.Indexes(); !slices.Equal(got, []int{1, 3}) {
		t.Fatalf("failed indexes = %v, want [1 3] (the large message and the later one with its key): %v", got, err)
	}
	if !errors.Is(pe.Failed[0], messagebus.ErrMessageTooLarge) {
		t.Fatalf("msgs[1] error = %v, want ErrMessageTooLarge", pe.Failed[0].Err)
	}
	var tl *messagebus.MessageTooLargeError
	if !errors.As(pe.Failed[0], &tl) || tl.Size <= s.f.MaxMessageBytes || tl.Limit <= 0 || tl.Limit > s.f.MaxMessageBytes {
		t.Fatalf("msgs[1] error = %#v, want a *MessageTooLargeError with size > %d and the limit", pe.Failed[0].Err, s.f.MaxMessageBytes)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(tl.Size)) || !strings.Contains(err.Error(), strconv.Itoa(tl.Limit)) {
		t.Fatalf("error %q does not name the size %d and limit %d", err, tl.Size, tl.Limit)
	}
	if !errors.Is(pe.Failed[1], messagebus.ErrEarlierFailed) {
		t.Fatalf("msgs[3] error = %v, want ErrEarlierFailed", pe.Failed[1].Err)
	}
	r := newRecorder()
	s.subscribe(t, b, tp, "g1", r.handler(nil))
	got := r.waitIDs(t, s.f.Timeout, []string{msgs[0].ID, msgs[2].ID})
	r.quiet(t, 300*time.Millisecond, len(got))
	if len(got) != 2 {
		t.Fatalf("got %d deliveries, want only the 2 acknowledged messages: %s", len(got), describe(got))
	}
}

func (s *suite) testInvalidTopic(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("good")
	msgs := messages(tp, []string{"a", "b"}, 2)
	msgs[0].Topic = "bad topic*"
	err := b.Publish(t.Context(), msgs...)
	var pe *messagebus.PublishError
	if !errors.As(err, &pe) || !slices.Equal(pe.Indexes(), []int{0}) {
		t.Fatalf("Publish with an invalid topic = %v, want a *PublishError for msgs[0] only", err)
	}
	var ve *messagebus.ValidationError
	if !errors.As(err, &ve) || ve.Field != "Topic" || ve.Value != "bad topic*" || !errors.Is(err, messagebus.ErrInvalidArgument) {
		t.Fatalf("error = %v, want a *ValidationError naming Topic %q", err, "bad topic*")
	}
	r := newRecorder()
	s.subscribe(t, b, tp, "g1", r.handler(nil))
	r.waitIDs(t, s.f.Timeout, []string{msgs[1].ID})
}

func (s *suite) testInvalidMessage(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("invalid")
	for _, tt := range []struct {
		name  string
		edit  func(*messagebus.Message)
		field string
	}{
		{"empty ID", func(m *messagebus.Message) { m.ID = "" }, "ID"},
		{"empty topic", func(m *messagebus.Message) { m.Topic = "" }, "Topic"},
		{"newline in header", func(m *messagebus.Message) { m.Headers["X"] = "a\r\nb" }, `Headers["X"]`},
		{"colon in header name", func(m *messagebus.Message) { m.Headers["A:B"] = "x" }, `Headers["A:B"]`},
		{"control in key", func(m *messagebus.Message) { m.Key = "a\nb" }, "Key"},
	} {
		m := messages(tp, []string{"k"}, 1)[0]
		tt.edit(&m)
		err := b.Publish(t.Context(), m)
		var ve *messagebus.ValidationError
		if !errors.As(err, &ve) || ve.Field != tt.field {
			t.Errorf("%s: Publish = %v, want a *ValidationError for field %s", tt.name, err, tt.field)
		}
	}
}

func (s *suite) testInvalidSubscribe(t *testing.T) {
	b := s.newBroker(t)
	h := func(context.Context, messagebus.Delivery) error { return nil }
	for _, tt := range []struct {
		topic, group string
		h            messagebus.Handler
		field        string
	}{
		{"bad topic", "g", h, "topic"},
		{"t..x", "g", h, "topic"},
		{"ok", "bad.group", h, "group"},
		{"ok", "", h, "group"},
		{"ok", "g", nil, "handler"},
	} {
		sub, err := b.Subscribe(t.Context(), tt.topic, tt.group, tt.h)
		var ve *messagebus.ValidationError
		if !errors.As(err, &ve) || ve.Field != tt.field || !errors.Is(err, messagebus.ErrInvalidArgument) {
			t.Errorf("Subscribe(%q, %q) = %v, want a *ValidationError for %s", tt.topic, tt.group, err, tt.field)
		}
		if sub != nil {
			t.Errorf("Subscribe(%q, %q) returned a subscription with its error", tt.topic, tt.group)
		}
	}
	if _, err := b.Subscribe(t.Context(), "ok", "g", h, messagebus.WithRetryDelay(-time.Second)); !errors.Is(err, messagebus.ErrInvalidArgument) {
		t.Errorf("Subscribe with a negative retry delay = %v, want ErrInvalidArgument", err)
	}
	for _, n := range []int{-1, messagebus.MaxConcurrency + 1} {
		var ve *messagebus.ValidationError
		if _, err := b.Subscribe(t.Context(), "ok", "g", h, messagebus.WithConcurrency(n)); !errors.As(err, &ve) || ve.Field != "Concurrency" {
			t.Errorf("Subscribe with concurrency %d = %v, want a *ValidationError for Concurrency", n, err)
		}
	}
}

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
	msgs := messages(tp, ks, len(ks)*2)
	publish(t, b, msgs...) // before subscribing: one fetch holds them all
	var inFirst atomic.Bool
	overlapped := make(chan struct{})
	var once sync.Once
	r := newRecorder()
	s.subscribe(t, b, tp, "g1", r.handler(func(d messagebus.Delivery) error {
		if d.Key != ks[0] {
			if inFirst.Load() {
				once.Do(func() { close(overlapped) })
			}
			return nil
		}
		if d.Headers["Seq"] == "0" {
			inFirst.Store(true)
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

func (s *suite) testPublishCancelled(t *testing.T) {
	b := s.newBroker(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	msgs := messages(topic("cancel"), []string{"k"}, 2)
	err := b.Publish(ctx, msgs...)
	var pe *messagebus.PublishError
	if !errors.As(err, &pe) || len(pe.Failed) != 2 || !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with a cancelled context = %v, want a *PublishError of 2 with context.Canceled", err)
	}
}

func (s *suite) testClosed(t *testing.T) {
	b := s.newBroker(t)
	tp := topic("closed")
	sub, err := b.Subscribe(t.Context(), tp, "g1", func(context.Context, messagebus.Delivery) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-sub.Done():
	case <-time.After(s.f.Timeout):
		t.Fatal("subscription did not end when the broker closed")
	}
	if err := sub.Err(); !errors.Is(err, messagebus.ErrClosed) {
		t.Fatalf("subscription Err after Close = %v, want ErrClosed", err)
	}
	if err := b.Publish(t.Context(), messages(tp, []string{"k"}, 1)...); !errors.Is(err, messagebus.ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
	if _, err := b.Subscribe(t.Context(), tp, "g2", func(context.Context, messagebus.Delivery) error { return nil }); !errors.Is(err, messagebus.ErrClosed) {
		t.Fatalf("Subscribe after Close = %v, want ErrClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
}
