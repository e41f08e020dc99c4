package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

func TestOutbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, sqlite.Config{})

	st, err := s.Stats(ctx)
	if err != nil || st.Backlog != 0 || !st.OldestAt.IsZero() {
		t.Fatalf("Stats of an empty outbox: %+v, %v", st, err)
	}
	if recs, err := s.Pending(ctx, 10); err != nil || len(recs) != 0 {
		t.Fatalf("Pending of an empty outbox: %d records, %v", len(recs), err)
	}

	before := time.Now()
	var appended []event.Event
	for i := range 3 {
		stream := fmt.Sprint("s-", i%2)
		res, err := s.Append(ctx, stream, event.Any, []event.Event{
			{Type: "t", Data: []byte(fmt.Sprint(2 * i)), Metadata: event.Metadata{CorrelationID: fmt.Sprint("c", i)}},
			{Type: "t", Data: []byte(fmt.Sprint(2*i + 1))},
		})
		if err != nil {
			t.Fatal(err)
		}
		appended = append(appended, res.Events...)
	}

	st, err = s.Stats(ctx)
	if err != nil || st.Backlog != 6 {
		t.Fatalf("Stats: %+v, %v; want backlog 6", st, err)
	}
	if st.OldestAt.Before(before.Add(-time.Second)) || st.OldestAt.After(time.Now()) || st.OldestAt.Location() != time.UTC {
		t.Errorf("OldestAt %v, want a UTC time since %v", st.OldestAt, before)
	}

	recs, err := s.Pending(ctx, 4)
	if err != nil || len(recs) != 4 {
		t.Fatalf("Pending(4): %d records, %v", len(recs), err)
	}
	for i, r := range recs {
		w := appended[i]
		if i > 0 && r.ID <= recs[i-1].ID {
			t.Errorf("records out of ID order: %d after %d", r.ID, recs[i-1].ID)
		}
		if r.Event.ID != w.ID || r.Event.Position != w.Position || r.Event.Version != w.Version ||
			r.Event.StreamID != w.StreamID || string(r.Event.Data) != string(w.Data) ||
			r.Event.Metadata.CorrelationID != w.Metadata.CorrelationID || !r.Event.RecordedAt.Equal(w.RecordedAt) {
			t.Errorf("record %d: event %+v, want %+v", i, r.Event, w)
		}
	}

	// Delete the first two and an unknown ID.
	if err := s.Delete(ctx, []int64{recs[0].ID, recs[1].ID, 999_999}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, nil); err != nil {
		t.Fatal(err)
	}
	rest, err := s.Pending(ctx, 100)
	if err != nil || len(rest) != 4 || rest[0].ID != recs[2].ID {
		t.Fatalf("Pending after Delete: %d records, %v", len(rest), err)
	}
	st, err = s.Stats(ctx)
	if err != nil || st.Backlog != 4 {
		t.Errorf("Stats after Delete: %+v, %v", st, err)
	}
	ids := make([]int64, len(rest))
	for i, r := range rest {
		ids[i] = r.ID
	}
	if err := s.Delete(ctx, ids); err != nil {
		t.Fatal(err)
	}
	if st, err = s.Stats(ctx); err != nil || st.Backlog != 0 || !st.OldestAt.IsZero() {
		t.Errorf("Stats after draining: %+v, %v", st, err)
	}
	// Events stay in the log after their outbox rows are gone.
	if all, err := s.ReadAll(ctx, event.Cursor{}, 100); err != nil || len(all) != 6 {
		t.Errorf("ReadAll after draining: %d events, %v", len(all), err)
	}
	if _, err := s.Pending(ctx, 0); err == nil {
		t.Error("Pending(0) succeeded, want an error")
	}
}

func TestOutboxDeleteManyChunks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, sqlite.Config{})
	evs := make([]event.Event, 1200)
	for i := range evs {
		evs[i] = newEvent("t", `{}`)
	}
	if _, err := s.Append(ctx, "s", event.NoStream, evs); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Pending(ctx, 2000)
	if err != nil || len(recs) != 1200 {
		t.Fatalf("Pending: %d, %v", len(recs), err)
	}
	for i, r := range recs {
		if r.Event.Version != int64(i+1) {
			t.Fatalf("record %d has event version %d: outbox not in stream order", i, r.Event.Version)
		}
	}
	ids := make([]int64, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	if err := s.Delete(ctx, ids); err != nil {
		t.Fatal(err)
	}
	if c := count(t, s, "cqrs_outbox"); c != 0 {
		t.Errorf("%d rows left", c)
	}
}
