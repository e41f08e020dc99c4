package eventtest

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/event"
)

func testExpectedVersionModes(t *testing.T, h Harness) {
	s := h.Store
	cases := []struct {
		name     string
		existing int // events already in the stream
		expected event.ExpectedVersion
		wantOK   bool
	}{
		{"Any on new stream", 0, event.Any, true},
		{"Any on existing stream", 2, event.Any, true},
		{"NoStream on new stream", 0, event.NoStream, true},
		{"NoStream on existing stream", 1, event.NoStream, false},
		{"StreamExists on new stream", 0, event.StreamExists, false},
		{"StreamExists on existing stream", 3, event.StreamExists, true},
		{"Exactly matching", 2, event.Exactly(2), true},
		{"Exactly behind", 3, event.Exactly(2), false},
		{"Exactly ahead", 1, event.Exactly(2), false},
		{"Exactly on new stream", 0, event.Exactly(1), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := stream(t)
			if tc.existing > 0 {
				mustAppend(t, s, st, event.NoStream, events(tc.existing)...)
			}
			res, err := s.Append(ctxFor(t), st, tc.expected, events(2))
			got, _ := load(t, s, st, 1)
			if tc.wantOK {
				if err != nil {
					t.Fatalf("append: %v", err)
				}
				want := int64(tc.existing + 2)
				if res.Version != want {
					t.Errorf("AppendResult.Version = %d, want %d", res.Version, want)
				}
				if !slices.Equal(versions(got), seq(1, want)) {
					t.Errorf("stored versions %v, want 1..%d", versions(got), want)
				}
				return
			}
			if !errors.Is(err, event.ErrConcurrencyConflict) {
				t.Fatalf("append: got %v, want a concurrency conflict", err)
			}
			if len(got) != tc.existing {
				t.Errorf("after a conflict the stream has %d events, want %d unchanged", len(got), tc.existing)
			}
		})
	}
}

func testConflictDetail(t *testing.T, h Harness) {
	st := stream(t)
	mustAppend(t, h.Store, st, event.NoStream, events(3)...)
	_, err := h.Store.Append(ctxFor(t), st, event.Exactly(1), events(1))
	var ce *event.ConcurrencyError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v (%T), want *event.ConcurrencyError", err, err)
	}
	if ce.Stream != st || ce.Actual != 3 || ce.Expected != event.Exactly(1) {
		t.Errorf("conflict detail = {%s %s %d}, want {%s version 1 3}", ce.Stream, ce.Expected, ce.Actual, st)
	}
	if !errors.Is(err, event.ErrConcurrencyConflict) {
		t.Error("errors.Is(err, ErrConcurrencyConflict) = false")
	}
}

func testStoredFields(t *testing.T, h Harness) {
	st := stream(t)
	in := newEvent("test.created", 7)
	in.SchemaVersion = 0 // stored as 1
	in.Metadata = event.Metadata{
		CorrelationID: "corr-1", CausationID: "cause-1",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "k=v",
		Extra: map[string]string{"tenant": "acme"},
	}
	second := newEvent("test.renamed", 8)
	second.SchemaVersion = 3
	before := time.Now().Add(-time.Minute)
	res := mustAppend(t, h.Store, st, event.NoStream, in, second)
	if len(res.Events) != 2 || res.Events[0].Version != 1 || res.Events[1].Version != 2 {
		t.Fatalf("AppendResult.Events versions = %v, want [1 2]", versions(res.Events))
	}
	got := mustLoad(t, h.Store, st, 1)
	if len(got) != 2 {
		t.Fatalf("loaded %d events, want 2", len(got))
	}
	e := got[0]
	if e.ID != in.ID || e.StreamID != st || e.StreamType != "test" || e.Type != "test.created" || e.Version != 1 {
		t.Errorf("stored envelope = %+v", e)
	}
	if e.SchemaVersion != 1 || got[1].SchemaVersion != 3 {
		t.Errorf("schema versions = %d, %d, want 1, 3", e.SchemaVersion, got[1].SchemaVersion)
	}
	if !bytes.Equal(e.Data, in.Data) {
		t.Errorf("data = %s, want %s", e.Data, in.Data)
	}
	if e.Metadata.CorrelationID != "corr-1" || e.Metadata.CausationID != "cause-1" ||
		e.Metadata.TraceParent != in.Metadata.TraceParent || e.Metadata.TraceState != "k=v" ||
		e.Metadata.Extra["tenant"] != "acme" {
		t.Errorf("metadata = %+v, want %+v", e.Metadata, in.Metadata)
	}
	if e.Position <= 0 || got[1].Position <= e.Position {
		t.Errorf("positions = %d, %d: want positive and increasing", e.Position, got[1].Position)
	}
	if e.RecordedAt.Before(before) || e.RecordedAt.After(time.Now().Add(time.Minute)) || e.RecordedAt.Location() != time.UTC {
		t.Errorf("RecordedAt = %v, want about now in UTC", e.RecordedAt)
	}
}

func testDuplicateEventID(t *testing.T, h Harness) {
	s := h.Store
	st := stream(t)
	e1, e2 := newEvent("test.a", 1), newEvent("test.b", 2)
	mustAppend(t, s, st, event.NoStream, e1, e2)

	// A retry of the same append, even with a now-stale expected version, is a no-op.
	res, err := s.Append(ctxFor(t), st, event.NoStream, []event.Event{e1, e2})
	if err != nil {
		t.Fatalf("re-append of stored events: %v, want a no-op", err)
	}
	if res.Version != 2 || len(res.Events) != 0 || res.Skipped != 2 {
		t.Errorf("no-op result = {Version %d, %d events, Skipped %d}, want {2, 0, 2}", res.Version, len(res.Events), res.Skipped)
	}
	// A batch mixing a stored and a new event stores only the new one.
	e3 := newEvent("test.c", 3)
	res = mustAppend(t, s, st, event.Exactly(2), e2, e3)
	if res.Version != 3 {
		t.Errorf("mixed batch version = %d, want 3", res.Version)
	}
	got := mustLoad(t, s, st, 1)
	ids := []uuid.UUID{}
	for _, e := range got {
		ids = append(ids, e.ID)
	}
	if !slices.Equal(ids, []uuid.UUID{e1.ID, e2.ID, e3.ID}) || !slices.Equal(versions(got), seq(1, 3)) {
		t.Errorf("stream holds %v at versions %v, want e1,e2,e3 at 1..3", ids, versions(got))
	}
	if res.Skipped != 1 || len(res.Events) != 1 || res.Events[0].ID != e3.ID {
		t.Errorf("mixed batch result = {Skipped %d, %d events}, want {1, [e3]}", res.Skipped, len(res.Events))
	}
	// A whole retry reports how many events it skipped.
	if res, err := s.Append(ctxFor(t), st, event.Exactly(1), []event.Event{e2, e3}); err != nil || res.Skipped != 2 || res.Version != 3 {
		t.Errorf("retry of the mixed batch = %+v, %v; want {Version 3, Skipped 2}", res, err)
	}

	// The same ID anywhere else is an error naming both places, and the
	// append stores nothing, not even its new events.
	other := stream(t)
	fresh := newEvent("test.d", 4)
	wantDup := func(name string, err error, stored string, version int64) {
		t.Helper()
		var de *event.DuplicateEventIDError
		if !errors.As(err, &de) || !errors.Is(err, event.ErrDuplicateEventID) {
			t.Fatalf("%s: %v, want a *event.DuplicateEventIDError", name, err)
		}
		if de.StoredStream != stored || de.StoredVersion != version {
			t.Errorf("%s: error locates the stored event at %s version %d, want %s version %d", name, de.StoredStream, de.StoredVersion, stored, version)
		}
		if msg := err.Error(); !strings.Contains(msg, stored) || !strings.Contains(msg, de.Stream) || !strings.Contains(msg, de.ID.String()) {
			t.Errorf("%s: message %q does not name the ID and both streams", name, msg)
		}
	}
	_, err = s.Append(ctxFor(t), other, event.Any, []event.Event{e1})
	wantDup("stored ID appended to another stream", err, st, 1)
	_, err = s.Append(ctxFor(t), other, event.NoStream, []event.Event{fresh, e2})
	wantDup("stored ID after a new event, in another stream", err, st, 2)
	_, err = s.Append(ctxFor(t), st, event.Any, []event.Event{fresh, e1})
	wantDup("stored ID after a new event in its own stream", err, st, 1)
	_, err = s.Append(ctxFor(t), st, event.Any, []event.Event{e3, e1})
	wantDup("stored IDs out of their order", err, st, 1)
	if n := len(readAll(t, s, 100)); n != 3 {
		t.Errorf("global log holds %d events, want 3", n)
	}
	if _, err := load(t, s, other, 1); !errors.Is(err, event.ErrStreamNotFound) {
		t.Errorf("load %s after refused appends: %v, want ErrStreamNotFound", other, err)
	}

	if ts, ok := s.(event.TxStore); ok {
		ctx := ctxFor(t)
		tx, err := ts.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		_, err = ts.AppendTx(ctx, tx, other, event.Any, []event.Event{e1})
		wantDup("AppendTx of a stored ID to another stream", err, st, 1)
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
	}
}
