package main

import (
	"context"
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
		case *sqliteBackend:
			l, err := s.Leader(sqlite.LeaderConfig{Owner: "relay-host:42", TTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			leader = l
		case *pgBackend:
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
