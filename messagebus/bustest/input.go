package bustest

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/messagebus"
)

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
