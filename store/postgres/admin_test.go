package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/testutil/pgtest"
)

func TestAdminListStreamsPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, Config{})
	for _, id := range []string{"product-b", "product-a", "product-c"} {
		if _, err := s.Append(ctx, id, event.NoStream, evs(2)); err != nil {
			t.Fatal(err)
		}
	}
	page, err := s.ListStreams(ctx, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].StreamID != "product-a" || page[1].StreamID != "product-b" {
		t.Fatalf("first page: %+v", page)
	}
	if p := page[0]; p.StreamType != "product" || p.Version != 2 || p.UpdatedAt.IsZero() || p.UpdatedAt.Location() != time.UTC {
		t.Errorf("stream info: %+v", p)
	}
	page, err = s.ListStreams(ctx, "product-b", 2)
	if err != nil || len(page) != 1 || page[0].StreamID != "product-c" {
		t.Fatalf("second page: %+v, %v", page, err)
	}
	if _, err := s.ListStreams(ctx, "", 0); err == nil {
		t.Error("limit 0: no error")
	}
}

func TestAdminMigrationStatusOnlyReads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := pgtest.New(t)
	s, err := New(pg.DB(), Config{Schema: "admin", TablePrefix: "a_"})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := s.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Version != 1 || ms[0].Name != "00001_schema.sql" || ms[0].Applied {
		t.Fatalf("before Migrate: %+v", ms)
	}
	if ok, err := s.TablesExist(ctx); ok || err != nil {
		t.Fatalf("TablesExist before Migrate: %v, %v", ok, err)
	}
	var schemaExists bool
	if err := pg.DB().QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'admin')`).Scan(&schemaExists); err != nil || schemaExists {
		t.Fatalf("MigrationStatus created the schema (%v, %v)", schemaExists, err)
	}

	before := time.Now().Add(-2 * time.Second)
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ms, err = s.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if !m.Applied || m.AppliedAt.Before(before) || m.AppliedAt.After(time.Now().Add(2*time.Second)) {
			t.Errorf("after Migrate: %+v", m)
		}
	}
	if ok, err := s.TablesExist(ctx); !ok || err != nil {
		t.Fatalf("TablesExist after Migrate: %v, %v", ok, err)
	}
}

func TestAdminHeadAndLiveCursor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, Config{})
	if h, err := s.Head(ctx); err != nil || h != (event.Cursor{}) {
		t.Fatalf("Head of an empty store: %v, %v", h, err)
	}
	s.Append(ctx, "product-1", event.NoStream, evs(2))
	res, err := s.Append(ctx, "product-2", event.NoStream, evs(3))
	if err != nil {
		t.Fatal(err)
	}
	last := res.Events[len(res.Events)-1].Cursor()
	if h, err := s.Head(ctx); err != nil || h != last {
		t.Fatalf("Head: %v, %v; want %v", h, err, last)
	}

	// Events committed after LiveCursor are read after it.
	live, err := s.LiveCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err = s.Append(ctx, "product-3", event.NoStream, evs(1))
	if err != nil {
		t.Fatal(err)
	}
	fresh := res.Events[0]
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := s.ReadAll(ctx, live, 100)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range got {
			found = found || e.ID == fresh.ID
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ReadAll after the live cursor %v never returned the new event (got %d events)", live, len(got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAdminListCheckpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, Config{})
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, tx, "zeta", event.Cursor{TxID: 7, Position: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, tx, "alpha", event.Cursor{TxID: 5, Position: 1}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	cps, err := s.ListCheckpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 2 || cps[0].Name != "alpha" || cps[0].Cursor != (event.Cursor{TxID: 5, Position: 1}) ||
		cps[1].Name != "zeta" || cps[1].Cursor != (event.Cursor{TxID: 7, Position: 3}) || cps[0].UpdatedAt.IsZero() {
		t.Errorf("checkpoints: %+v", cps)
	}
}

func TestAdminLeaseHolderFindsTheRelayLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, Config{})
	other, err := New(s.DB(), Config{TablePrefix: "other_"})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, held, err := s.LeaseHolder(ctx); held || err != nil {
		t.Fatalf("LeaseHolder before any relay: %v, %v", held, err)
	}
	leader, err := s.Leader(LeaderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	acquired, err := leader.TryAcquire(ctx)
	if err != nil || acquired == nil {
		t.Fatalf("TryAcquire: %v, %v", acquired, err)
	}
	h, held, err := s.LeaseHolder(ctx)
	if err != nil || !held {
		t.Fatalf("LeaseHolder while held: %v, %v", held, err)
	}
	if h.PID != acquired.(*lease).pid || h.User == "" || h.SessionStart.IsZero() {
		t.Errorf("holder %+v, want pid %d", h, acquired.(*lease).pid)
	}
	ls, err := s.RelayLeases(ctx)
	if err != nil || len(ls) != 1 || !ls[0].Active || ls[0].PID != h.PID || !strings.HasPrefix(ls[0].Holder, fmt.Sprintf("backend pid %d", h.PID)) {
		t.Errorf("RelayLeases while held: %+v, %v", ls, err)
	}
	// Another outbox in the database has its own lock.
	if _, held, err := other.LeaseHolder(ctx); held || err != nil {
		t.Errorf("the other outbox's LeaseHolder: %v, %v", held, err)
	}
	if err := acquired.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, held, err := s.LeaseHolder(ctx); held || err != nil {
		t.Fatalf("LeaseHolder after release: %v, %v", held, err)
	}
	if ls, err := s.RelayLeases(ctx); len(ls) != 0 || err != nil {
		t.Fatalf("RelayLeases after release: %v, %v", ls, err)
	}
}

func TestAdminProcessed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, Config{})
	id := event.NewID()
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkProcessed(ctx, tx, "projector", id); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		handler string
		want    bool
	}{{"projector", true}, {"mailer", false}} {
		if got, err := s.Processed(ctx, tt.handler, id); got != tt.want || err != nil {
			t.Errorf("Processed(%s): %v, %v; want %v", tt.handler, got, err, tt.want)
		}
	}
}
