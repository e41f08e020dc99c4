package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/outbox"
	"github.com/cqrskit/cqrskit/store/postgres"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

func TestOutboxStatus(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		d := newDB(t, kind)
		var st outboxStatus
		d.run(t, "outbox", "status", "-o", "json").want(t, exitOK).json(t, &st)
		if st.Backlog != 0 || !st.OldestAt.IsZero() || len(st.Relays) != 0 {
			t.Fatalf("empty outbox: %+v", st)
		}
		r := d.run(t, "outbox", "status").want(t, exitOK)
		if !strings.Contains(r.stdout, "none active") {
			t.Errorf("text without a relay:\n%s", r.stdout)
		}

		d.appendEvents(t, "product-a", 3)
		time.Sleep(20 * time.Millisecond)
		d.run(t, "outbox", "status", "-o", "json").want(t, exitOK).json(t, &st)
		if st.Backlog != 3 || st.OldestAt.IsZero() || st.OldestAgeSeconds <= 0 {
			t.Fatalf("outbox with 3 rows: %+v", st)
		}

		// A relay takes leadership.
		ctx := context.Background()
		var leader outbox.Leader
		switch s := d.store.(type) {
		case *sqlite.Store:
			l, err := s.Leader(sqlite.LeaderConfig{Owner: "relay-host:42", TTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			leader = l
		case *postgres.Store:
			l, err := s.Leader(postgres.LeaderConfig{})
			if err != nil {
				t.Fatal(err)
			}
			leader = l
		}
		lease, err := leader.TryAcquire(ctx)
		if err != nil || lease == nil {
			t.Fatalf("TryAcquire: %v, %v", lease, err)
		}
		defer lease.Release(ctx)

		d.run(t, "outbox", "status", "-o", "json").want(t, exitOK).json(t, &st)
		if len(st.Relays) != 1 || !st.Relays[0].Active {
			t.Fatalf("relays while one holds the lease: %+v", st.Relays)
		}
		l := st.Relays[0]
		switch kind {
		case "sqlite":
			if l.Holder != "relay-host:42" || l.Name != "outbox" || l.ExpiresAt.Before(time.Now()) {
				t.Errorf("sqlite lease: %+v", l)
			}
		case "postgres":
			if l.PID == 0 || !strings.Contains(l.Holder, "backend pid") || l.SessionStart.IsZero() {
				t.Errorf("postgres lock holder: %+v", l)
			}
		}
		r = d.run(t, "outbox", "status").want(t, exitOK)
		if !strings.Contains(r.stdout, "backlog  3") || !strings.Contains(r.stdout, l.Holder) {
			t.Errorf("text:\n%s", r.stdout)
		}

		if err := lease.Release(ctx); err != nil {
			t.Fatal(err)
		}
		d.run(t, "outbox", "status", "-o", "json").want(t, exitOK).json(t, &st)
		if len(st.Relays) != 0 {
			t.Errorf("relays after release: %+v", st.Relays)
		}
	})
}

func TestOutboxParked(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		d := newDB(t, kind)
		ctx := context.Background()
		d.appendEvents(t, "product-a", 3)
		pending, err := d.store.Pending(ctx, 10)
		if err != nil || len(pending) != 3 {
			t.Fatalf("pending = %v, %v", pending, err)
		}
		first := pending[0].ID
		if err := d.store.Park(ctx, first, "message too large: 2 MB over the server's 1 MB max_payload"); err != nil {
			t.Fatal(err)
		}
		var page parkedPage
		d.run(t, "outbox", "parked", "list", "-o", "json").want(t, exitOK).json(t, &page)
		if len(page.Parked) != 1 || page.Parked[0].OutboxID != first || page.Parked[0].Event.StreamID != "product-a" ||
			page.Parked[0].Event.Version != 1 || !strings.Contains(page.Parked[0].Reason, "max_payload") || page.Parked[0].ParkedAt.IsZero() {
			t.Fatalf("parked list: %+v", page)
		}
		if r := d.run(t, "outbox", "parked", "list").want(t, exitOK); !strings.Contains(r.stdout, "max_payload") || !strings.Contains(r.stdout, "product-a") {
			t.Errorf("text list:\n%s", r.stdout)
		}
		var st outboxStatus
		d.run(t, "outbox", "status", "-o", "json").want(t, exitOK).json(t, &st)
		if st.Parked != 1 || st.Backlog != 2 {
			t.Errorf("status with a parked row: %+v", st)
		}
		// The stream's later rows wait behind the parked one.
		if p, err := d.store.Pending(ctx, 10); err != nil || len(p) != 0 {
			t.Errorf("pending behind a parked row = %v, %v; want none", p, err)
		}

		d.run(t, "outbox", "parked", "retry", strconv.FormatInt(first, 10)).want(t, exitOK)
		p, err := d.store.Pending(ctx, 10)
		if err != nil || len(p) != 3 || p[0].ID != first {
			t.Fatalf("pending after retry = %v, %v; want all 3, the retried row first", p, err)
		}

		if err := d.store.Park(ctx, first, "bad topic"); err != nil {
			t.Fatal(err)
		}
		d.run(t, "outbox", "parked", "discard", strconv.FormatInt(first, 10)).want(t, exitOK)
		d.run(t, "outbox", "status", "-o", "json").want(t, exitOK).json(t, &st)
		if st.Parked != 0 || st.Backlog != 2 {
			t.Errorf("status after discard: %+v", st)
		}
		if r := d.run(t, "outbox", "parked", "retry", "999999").want(t, exitError); !strings.Contains(r.stderr, "not parked") {
			t.Errorf("retry of an unknown ID: %s", r.stderr)
		}
	})
}
