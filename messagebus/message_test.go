package messagebus_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/messagebus"
)

func TestValidateTopic(t *testing.T) {
	for _, tt := range []struct {
		topic string
		ok    bool
	}{
		{"product", true},
		{"billing.invoice-v2", true},
		{"A_b-9.c", true},
		{strings.Repeat("t", 200), true},
		{"", false},
		{strings.Repeat("t", 201), false},
		{".product", false},
		{"product.", false},
		{"a..b", false},
		{"bad topic", false},
		{"a*", false},
		{"a>", false},
		{"a/b", false},
		{"ü", false},
	} {
		err := messagebus.ValidateTopic(tt.topic)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateTopic(%q) = %v, want ok %v", tt.topic, err, tt.ok)
		}
		var ve *messagebus.ValidationError
		if err != nil && (!errors.As(err, &ve) || ve.Field != "topic" || ve.Value != tt.topic || !errors.Is(err, messagebus.ErrInvalidArgument)) {
			t.Errorf("ValidateTopic(%q) = %#v, want a *ValidationError naming topic and value", tt.topic, err)
		}
	}
}

func TestValidateGroup(t *testing.T) {
	for _, tt := range []struct {
		group string
		ok    bool
	}{
		{"billing", true},
		{"search-index_2", true},
		{"", false},
		{"a.b", false},
		{"a b", false},
		{strings.Repeat("g", 129), false},
	} {
		if err := messagebus.ValidateGroup(tt.group); (err == nil) != tt.ok {
			t.Errorf("ValidateGroup(%q) = %v, want ok %v", tt.group, err, tt.ok)
		}
	}
}

func TestMessageValidate(t *testing.T) {
	valid := messagebus.Message{ID: "0190f3a2-6c1e", Topic: "product", Key: "product-1", Headers: map[string]string{"traceparent": "00-ab-cd-01"}}
	if err := valid.Validate(); err != nil {
		t.Fatalf("Validate(valid) = %v", err)
	}
	for _, tt := range []struct {
		name  string
		edit  func(*messagebus.Message)
		field string
	}{
		{"empty ID", func(m *messagebus.Message) { m.ID = "" }, "ID"},
		{"space in ID", func(m *messagebus.Message) { m.ID = "a b" }, "ID"},
		{"long ID", func(m *messagebus.Message) { m.ID = strings.Repeat("i", 257) }, "ID"},
		{"bad topic", func(m *messagebus.Message) { m.Topic = "a b" }, "Topic"},
		{"control in key", func(m *messagebus.Message) { m.Key = "a\x00" }, "Key"},
		{"invalid UTF-8 key", func(m *messagebus.Message) { m.Key = "\xff" }, "Key"},
		{"long key", func(m *messagebus.Message) { m.Key = strings.Repeat("k", 1025) }, "Key"},
		{"empty header name", func(m *messagebus.Message) { m.Headers[""] = "x" }, `Headers[""]`},
		{"header name with colon", func(m *messagebus.Message) { m.Headers["a:b"] = "x" }, `Headers["a:b"]`},
		{"header value with CRLF", func(m *messagebus.Message) { m.Headers["X"] = "a\r\nInjected: 1" }, `Headers["X"]`},
	} {
		m := valid
		m.Headers = map[string]string{"traceparent": "00-ab-cd-01"}
		tt.edit(&m)
		var ve *messagebus.ValidationError
		if err := m.Validate(); !errors.As(err, &ve) || ve.Field != tt.field {
			t.Errorf("%s: Validate = %v, want a *ValidationError for %s", tt.name, err, tt.field)
		}
	}
}

func TestPublishError(t *testing.T) {
	tooLarge := &messagebus.MessageTooLargeError{Size: 2000, Limit: 1000, What: "server max_payload"}
	pe := &messagebus.PublishError{Total: 10}
	for i := range 5 {
		var err error = tooLarge
		if i > 0 {
			err = fmt.Errorf("x: %w", messagebus.ErrUnavailable)
		}
		pe.Failed = append(pe.Failed, messagebus.MessageError{Index: i * 2, ID: fmt.Sprint("id", i), Err: err})
	}
	var err error = pe
	msg := err.Error()
	for _, want := range []string{"5 of 10", "msgs[0] (id id0)", "2000 bytes, limit 1000 (server max_payload)", "and 2 more"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Error() = %q, want it to contain %q", msg, want)
		}
	}
	if !errors.Is(err, messagebus.ErrMessageTooLarge) || !errors.Is(err, messagebus.ErrUnavailable) {
		t.Error("errors.Is does not see the messages' errors")
	}
	var got *messagebus.MessageTooLargeError
	if !errors.As(err, &got) || got.Limit != 1000 {
		t.Error("errors.As does not find the *MessageTooLargeError")
	}
	if idx := pe.Indexes(); fmt.Sprint(idx) != "[0 2 4 6 8]" {
		t.Errorf("Indexes = %v", idx)
	}
}

func TestRetryAfter(t *testing.T) {
	base := errors.New("busy")
	err := fmt.Errorf("handler: %w", messagebus.RetryAfter(base, 3*time.Second))
	if d, ok := messagebus.RetryDelay(err); !ok || d != 3*time.Second {
		t.Errorf("RetryDelay = %v, %v; want 3s, true", d, ok)
	}
	if !errors.Is(err, base) {
		t.Error("RetryAfter hides the wrapped error")
	}
	if _, ok := messagebus.RetryDelay(base); ok {
		t.Error("RetryDelay of a plain error reports a delay")
	}
	if err := messagebus.RetryAfter(nil, time.Second); err == nil {
		t.Error("RetryAfter(nil, d) = nil, want an error")
	}
	if d, _ := messagebus.RetryDelay(messagebus.RetryAfter(base, -time.Second)); d != 0 {
		t.Errorf("negative delay = %v, want 0", d)
	}
}
