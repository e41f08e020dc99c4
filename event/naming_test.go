package event_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

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

func TestPrepareAppendRejectsUndeliverableNames(t *testing.T) {
	e := event.Event{StreamType: "order:line", Type: "order.line-added", Data: []byte(`{}`)}
	_, err := event.PrepareAppend("order:line-1", event.Any, []event.Event{e})
	var ve *event.ValidationError
	if !errors.As(err, &ve) || ve.Field != "events[0].StreamType" || ve.Value != "order:line" {
		t.Fatalf("PrepareAppend with StreamType order:line = %v, want a validation error on events[0].StreamType", err)
	}
	e.StreamType = ""
	if _, err := event.PrepareAppend("order:line-1", event.Any, []event.Event{e}); err != nil {
		t.Errorf("empty StreamType (published as \"events\") rejected: %v", err)
	}
	if _, err := event.PrepareAppend("bad\nstream", event.Any, []event.Event{e}); !errors.As(err, &ve) || ve.Field != "stream" {
		t.Errorf("stream ID with a line break = %v, want a validation error on stream", err)
	}
}

func TestSkipStored(t *testing.T) {
	const st = "acct-1"
	a, b, c := event.Event{ID: uuid.New()}, event.Event{ID: uuid.New()}, event.Event{ID: uuid.New()}
	evs := []event.Event{a, b, c}
	cases := []struct {
		name   string
		stored map[uuid.UUID]event.StoredAt
		fresh  int   // events left to append
		dupIdx int   // index named by the error, or -1
		dupAt  int64 // version named by the error
	}{
		{"none stored", nil, 3, -1, 0},
		{"whole retry", map[uuid.UUID]event.StoredAt{a.ID: {st, 4}, b.ID: {st, 5}, c.ID: {st, 6}}, 0, -1, 0},
		{"stored prefix", map[uuid.UUID]event.StoredAt{a.ID: {st, 4}, b.ID: {st, 5}}, 1, -1, 0},
		{"other stream", map[uuid.UUID]event.StoredAt{a.ID: {"acct-2", 1}}, 0, 0, 1},
		{"stored after a fresh one", map[uuid.UUID]event.StoredAt{b.ID: {st, 2}}, 0, 1, 2},
		{"out of order", map[uuid.UUID]event.StoredAt{a.ID: {st, 5}, b.ID: {st, 4}}, 0, 1, 4},
		{"not consecutive", map[uuid.UUID]event.StoredAt{a.ID: {st, 1}, b.ID: {st, 3}}, 0, 1, 3},
	}
	for _, tc := range cases {
		fresh, err := event.SkipStored(st, evs, tc.stored)
		if tc.dupIdx < 0 {
			if err != nil || len(fresh) != tc.fresh || (tc.fresh > 0 && fresh[0].ID != evs[3-tc.fresh].ID) {
				t.Errorf("%s: SkipStored = %d events, %v; want the last %d", tc.name, len(fresh), err, tc.fresh)
			}
			continue
		}
		var de *event.DuplicateEventIDError
		if !errors.As(err, &de) || !errors.Is(err, event.ErrDuplicateEventID) {
			t.Fatalf("%s: SkipStored = %v, want a *DuplicateEventIDError", tc.name, err)
		}
		if de.Index != tc.dupIdx || de.ID != evs[tc.dupIdx].ID || de.Stream != st || de.StoredVersion != tc.dupAt ||
			de.StoredStream != tc.stored[evs[tc.dupIdx].ID].Stream {
			t.Errorf("%s: error = %+v", tc.name, de)
		}
		if !strings.Contains(err.Error(), st) || !strings.Contains(err.Error(), de.StoredStream) {
			t.Errorf("%s: message %q does not name both streams", tc.name, err)
		}
	}
}
