package bustest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/messagebus"
)

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
