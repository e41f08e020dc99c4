package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

func TestAdminListStreamsPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, sqlite.Config{})
	for _, id := range []string{"product-b", "product-a", "product-c"} {
		evs := []event.Event{newEvent("product.created", `{}`), newEvent("product.renamed", `{}`)}
		evs[0].StreamType, evs[1].StreamType = "product", "product"
		if _, err := s.Append(ctx, id, event.NoStream, evs); err != nil {
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
	s := openStore(t, sqlite.Config{TablePrefix: "a_"})
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
	if n := count(t, s, "sqlite_schema"); n != 0 {
		t.Fatalf("MigrationStatus created %d schema objects", n)
	}
	before := time.Now().UTC().Add(-2 * time.Second)
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
	s := newStore(t, sqlite.Config{})
	if h, err := s.Head(ctx); err != nil || h != (event.Cursor{}) {
		t.Fatalf("Head of an empty store: %v, %v", h, err)
	}
	res, err := s.Append(ctx, "product-1", event.NoStream, []event.Event{newEvent("a", `{}`), newEvent("b", `{}`)})
	if err != nil {
		t.Fatal(err)
	}
	last := res.Events[1].Cursor()
	if h, err := s.Head(ctx); err != nil || h != last {
		t.Fatalf("Head: %v, %v; want %v", h, err, last)
	}
	live, err := s.LiveCursor(ctx)
	if err != nil || live != last {
		t.Fatalf("LiveCursor: %v, %v; want %v", live, err, last)
	}
	res, err = s.Append(ctx, "product-2", event.NoStream, []event.Event{newEvent("c", `{}`)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadAll(ctx, live, 10)
	if err != nil || len(got) != 1 || got[0].ID != res.Events[0].ID {
		t.Fatalf("ReadAll after the live cursor: %+v, %v", got, err)
	}
}

func TestAdminListCheckpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, sqlite.Config{})
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, tx, "zeta", event.Cursor{Position: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, tx, "alpha", event.Cursor{Position: 1}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	cps, err := s.ListCheckpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 2 || cps[0].Name != "alpha" || cps[0].Cursor.Position != 1 || cps[1].Name != "zeta" ||
		cps[1].Cursor.Position != 3 || cps[0].UpdatedAt.IsZero() {
		t.Errorf("checkpoints: %+v", cps)
	}
}

func TestAdminRelayLeases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, sqlite.Config{})
	if ls, err := s.RelayLeases(ctx); len(ls) != 0 || err != nil {
		t.Fatalf("RelayLeases before any relay: %v, %v", ls, err)
	}
	leader, err := s.Leader(sqlite.LeaderConfig{Owner: "host:1", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	lease, err := leader.TryAcquire(ctx)
	if err != nil || lease == nil {
		t.Fatalf("TryAcquire: %v, %v", lease, err)
	}
	ls, err := s.RelayLeases(ctx)
	if err != nil || len(ls) != 1 {
		t.Fatalf("RelayLeases while held: %v, %v", ls, err)
	}
	if l := ls[0]; l.Name != "outbox" || l.Holder != "host:1" || !l.Active || time.Until(l.ExpiresAt) < 50*time.Second {
		t.Errorf("lease: %+v", l)
	}
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if ls, err := s.RelayLeases(ctx); len(ls) != 0 || err != nil {
		t.Fatalf("RelayLeases after release: %v, %v", ls, err)
	}
}

func TestAdminProcessed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, sqlite.Config{})
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
