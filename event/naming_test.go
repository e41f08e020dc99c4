package event_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/messagebus"
)

func TestValidateStreamType(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
	}{
		{"product", true},
		{"Product_2", true},
		{"billing.invoice-v2", true},
		{"a.b.c", true},
		{"x", true},
		{strings.Repeat("a", event.MaxStreamTypeLen), true},
		{"", false},
		{strings.Repeat("a", event.MaxStreamTypeLen+1), false},
		{"order:line", false},
		{"bank account", false},
		{"order/line", false},
		{"order*", false},
		{"order>", false},
		{".", false},
		{"..", false},
		{".order", false},
		{"order.", false},
		{"order..line", false},
		{"commande-réglée", false},
		{"tab\there", false},
		{"nul\x00", false},
	}
	for _, tc := range cases {
		err := event.ValidateStreamType(tc.name)
		if tc.ok != (err == nil) {
			t.Errorf("ValidateStreamType(%q) = %v, want ok=%v", tc.name, err, tc.ok)
			continue
		}
		if err != nil {
			var ve *event.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, event.ErrInvalidEvent) || ve.Field != "StreamType" || ve.Value != tc.name {
				t.Errorf("ValidateStreamType(%q) = %v, want a *ValidationError naming StreamType and the value", tc.name, err)
			}
		}
		// The rule is the broker's: a stream type is accepted exactly when
		// messagebus accepts it as a topic (outbox.DefaultTopic).
		if terr := messagebus.ValidateTopic(tc.name); (terr == nil) != (err == nil) {
			t.Errorf("%q: ValidateStreamType = %v but messagebus.ValidateTopic = %v; the rules must agree", tc.name, err, terr)
		}
	}
}

func TestValidateStreamID(t *testing.T) {
	cases := []struct {
		id string
		ok bool
	}{
		{"product-0190abcd", true},
		{"order:line/42 (eu)", true},
		{"commande-réglée", true},
		{strings.Repeat("s", event.MaxStreamIDLen), true},
		{"", false},
		{strings.Repeat("s", event.MaxStreamIDLen+1), false},
		{"bad\xffutf8", false},
		{"line\nbreak", false},
		{"nul\x00", false},
	}
	for _, tc := range cases {
		err := event.ValidateStreamID(tc.id)
		if tc.ok != (err == nil) {
			t.Errorf("ValidateStreamID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
			continue
		}
		if err == nil {
			// Every accepted stream ID is a key the brokers carry.
			m := messagebus.Message{ID: "id-1", Topic: "t", Key: tc.id}
			if verr := m.Validate(); verr != nil {
				t.Errorf("stream ID %q accepted, but messagebus rejects it as a key: %v", tc.id, verr)
			}
		}
	}
}
