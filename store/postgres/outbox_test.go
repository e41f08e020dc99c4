package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/cqrskit/cqrskit/event"
)

func TestOutboxPendingDeleteStats(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := context.Background()
	st, err := s.Stats(ctx)
	if err != nil || st.Backlog != 0 || !st.OldestAt.IsZero() {
		t.Fatalf("empty stats: %+v, %v", st, err)
	}
	before := time.Now()
	a, err := s.Append(ctx, "a", event.NoStream, evs(3))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Append(ctx, "b", event.NoStream, evs(2))
	if err != nil {
		t.Fatal(err)
	}
	appended := append(a.Events, b.Events...)

	recs, err := s.Pending(ctx, 100)
	if err != nil || len(recs) != 5 {
		t.Fatalf("pending: %d, %v", len(recs), err)
	}
	for i, r := range recs {
		e := appended[i]
		if r.Event.ID != e.ID || r.Event.Position != e.Position || r.Event.Version != e.Version ||
			r.Event.TxID != e.TxID || r.Event.StreamID != e.StreamID || string(r.Event.Data) != string(e.Data) {
			t.Errorf("record %d: %+v, want event %+v", i, r.Event, e)
		}
		if i > 0 && r.ID <= recs[i-1].ID {
			t.Errorf("records not in ID order")
		}
	}
	if page, _ := s.Pending(ctx, 2); len(page) != 2 || page[1].ID != recs[1].ID {
		t.Errorf("limit 2: %+v", page)
	}
	st, err = s.Stats(ctx)
	if err != nil || st.Backlog != 5 || st.OldestAt.Before(before.Add(-time.Minute)) || st.OldestAt.Location() != time.UTC {
		t.Fatalf("stats: %+v, %v", st, err)
	}

	if err := s.Delete(ctx, []int64{recs[0].ID, recs[1].ID, 999_999}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, nil); err != nil {
		t.Fatal(err)
	}
	rest, err := s.Pending(ctx, 100)
	if err != nil || len(rest) != 3 || rest[0].ID != recs[2].ID {
		t.Fatalf("after delete: %+v, %v", rest, err)
	}
	if st, _ := s.Stats(ctx); st.Backlog != 3 {
		t.Errorf("backlog %d after delete", st.Backlog)
	}
	// Events stay in the log.
	if n := countRows(t, s, "events"); n != 5 {
		t.Errorf("%d events", n)
	}
	if _, err := s.Pending(ctx, 0); !errors.Is(err, event.ErrInvalidEvent) {
		t.Errorf("Pending(0): %v", err)
	}
}

func TestOutboxNotifiesOnAppend(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := context.Background()
	conn, err := s.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `LISTEN "`+s.NotifyChannel()+`"`); err != nil {
		t.Fatal(err)
	}
	wait := func(timeout time.Duration) error {
		return conn.Raw(func(dc any) error {
			wctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			n, err := dc.(*stdlib.Conn).Conn().WaitForNotification(wctx)
			if err == nil && n.Channel != s.NotifyChannel() {
				t.Errorf("notified on %q", n.Channel)
			}
			return err
		})
	}
	if _, err := s.Append(ctx, "a", event.NoStream, evs(2)); err != nil {
		t.Fatal(err)
	}
	if err := wait(5 * time.Second); err != nil {
		t.Fatalf("no notification after an append: %v", err)
	}

	// A burst of concurrent appends is coalesced into fewer notifications,
	// and the next append after it notifies again.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := s.Append(ctx, fmt.Sprintf("burst-%d", i), event.NoStream, evs(1)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got := 0
	for wait(200*time.Millisecond) == nil {
		got++
	}
	if got < 1 || got > 20 {
		t.Errorf("%d notifications for a burst of 20 appends", got)
	}
	t.Logf("%d notifications for a burst of 20 appends", got)
	if _, err := s.Append(ctx, "after", event.NoStream, evs(1)); err != nil {
		t.Fatal(err)
	}
	if err := wait(5 * time.Second); err != nil {
		t.Fatalf("no notification after the burst: %v", err)
	}
	// A rolled-back append does not notify.
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendTx(ctx, tx, "rolled-back", event.NoStream, evs(1)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := wait(300 * time.Millisecond); err == nil {
		t.Error("a rolled-back append notified")
	}
}
