package driver_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/driver"
	"github.com/cqrskit/cqrskit/event"
)

func TestPrepareAppendFillsDefaults(t *testing.T) {
	in := []event.Event{{Type: "t", Data: []byte("{}"), Metadata: event.Metadata{Extra: map[string]string{"k": "v"}}}}
	out, err := driver.PrepareAppend("s-1", event.Any, in)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].ID == uuid.Nil || out[0].ID.Version() != 7 || out[0].StreamID != "s-1" || out[0].SchemaVersion != 1 {
		t.Errorf("defaults not filled: %+v", out[0])
	}
	out[0].Metadata.Extra["k"] = "changed"
	if in[0].Metadata.Extra["k"] != "v" || in[0].ID != uuid.Nil {
		t.Error("PrepareAppend modified its input")
	}
}

func TestPrepareAppendRejectsBadMetadataKeys(t *testing.T) {
	for _, k := range []string{"", "has space", "a:b", "tab\t", "é"} {
		in := []event.Event{{Type: "t", Data: []byte("{}"), Metadata: event.Metadata{Extra: map[string]string{k: "v"}}}}
		_, err := driver.PrepareAppend("s-1", event.Any, in)
		var ve *event.ValidationError
		if !errors.As(err, &ve) || ve.Field != "events[0].Metadata.Extra key" || ve.Value != k {
			t.Errorf("key %q: got %v, want a validation error naming the key", k, err)
		}
	}
	ok := []event.Event{{Type: "t", Data: []byte("{}"), Metadata: event.Metadata{Extra: map[string]string{"tenant-id": "v"}}}}
	if _, err := driver.PrepareAppend("s-1", event.Any, ok); err != nil {
		t.Errorf("a plain key: %v", err)
	}
}

func TestPrepareAppendRejectsUndeliverableNames(t *testing.T) {
	e := event.Event{StreamType: "order:line", Type: "order.line-added", Data: []byte(`{}`)}
	_, err := driver.PrepareAppend("order:line-1", event.Any, []event.Event{e})
	var ve *event.ValidationError
	if !errors.As(err, &ve) || ve.Field != "events[0].StreamType" || ve.Value != "order:line" {
		t.Fatalf("PrepareAppend with StreamType order:line = %v, want a validation error on events[0].StreamType", err)
	}
	e.StreamType = ""
	if _, err := driver.PrepareAppend("order:line-1", event.Any, []event.Event{e}); err != nil {
		t.Errorf("empty StreamType (published as \"events\") rejected: %v", err)
	}
	if _, err := driver.PrepareAppend("bad\nstream", event.Any, []event.Event{e}); !errors.As(err, &ve) || ve.Field != "stream" {
		t.Errorf("stream ID with a line break = %v, want a validation error on stream", err)
	}
}

func TestSkipStored(t *testing.T) {
	const st = "acct-1"
	a, b, c := event.Event{ID: uuid.New()}, event.Event{ID: uuid.New()}, event.Event{ID: uuid.New()}
	evs := []event.Event{a, b, c}
	cases := []struct {
		name   string
		stored map[uuid.UUID]driver.StoredAt
		fresh  int   // events left to append
		dupIdx int   // index named by the error, or -1
		dupAt  int64 // version named by the error
	}{
		{"none stored", nil, 3, -1, 0},
		{"whole retry", map[uuid.UUID]driver.StoredAt{a.ID: {st, 4}, b.ID: {st, 5}, c.ID: {st, 6}}, 0, -1, 0},
		{"stored prefix", map[uuid.UUID]driver.StoredAt{a.ID: {st, 4}, b.ID: {st, 5}}, 1, -1, 0},
		{"other stream", map[uuid.UUID]driver.StoredAt{a.ID: {"acct-2", 1}}, 0, 0, 1},
		{"stored after a fresh one", map[uuid.UUID]driver.StoredAt{b.ID: {st, 2}}, 0, 1, 2},
		{"out of order", map[uuid.UUID]driver.StoredAt{a.ID: {st, 5}, b.ID: {st, 4}}, 0, 1, 4},
		{"not consecutive", map[uuid.UUID]driver.StoredAt{a.ID: {st, 1}, b.ID: {st, 3}}, 0, 1, 3},
	}
	for _, tc := range cases {
		fresh, err := driver.SkipStored(st, evs, tc.stored)
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
