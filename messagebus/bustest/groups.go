package bustest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/messagebus"
)

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
