package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/testutil/pgtest"
)

var allTables = []string{"streams", "events", "outbox", "snapshots", "processed", "dead_letters", "checkpoints", "relay_leases", "outbox_parked"}

func TestMigrateTwiceIsANoOp(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	for _, table := range allTables {
		if n := countRows(t, s, table); n != 0 {
			t.Errorf("%s has %d rows", table, n)
		}
	}
	var applied int
	if err := s.DB().QueryRow(`SELECT count(*) FROM cqrs_schema_version WHERE version_id > 0`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != len(s.migrations) {
		t.Errorf("version table lists %d migrations, want %d", applied, len(s.migrations))
	}
}

func TestConcurrentMigrate(t *testing.T) {
	t.Parallel()
	pg := pgtest.New(t)
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			s, err := New(pg.DB(), Config{Schema: "cqrs"})
			if err == nil {
				err = s.Migrate(context.Background())
			}
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestSchemaAndPrefixVariant(t *testing.T) {
	t.Parallel()
	pg := pgtest.New(t)
	ctx := context.Background()
	// Two stores side by side in one database: a schema with a prefix,
	// and the defaults.
	a, err := New(pg.DB(), Config{Schema: "tenant_a", TablePrefix: "es_"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(pg.DB(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{a, b} {
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.Table("events"); got != "tenant_a.es_events" {
		t.Errorf("Table = %s", got)
	}
	if got := a.NotifyChannel(); got != "tenant_a.es_outbox" {
		t.Errorf("NotifyChannel = %s", got)
	}
	var n int
	if err := pg.DB().QueryRow(`SELECT count(*) FROM pg_tables WHERE schemaname = 'tenant_a' AND tablename LIKE 'es\_%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(allTables)+1 { // + goose's version table
		t.Errorf("tenant_a has %d es_ tables, want %d", n, len(allTables)+1)
	}

	if _, err := a.Append(ctx, "product-1", event.NoStream, evs(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(ctx, "product-1", event.NoStream, evs(1)); err != nil {
		t.Fatalf("the same stream in the other store: %v", err)
	}
	got, err := load(t, a, "product-1", 1)
	if err != nil || len(got) != 2 {
		t.Fatalf("load from variant: %d events, %v", len(got), err)
	}
	if recs, err := a.Pending(ctx, 10); err != nil || len(recs) != 2 {
		t.Fatalf("variant outbox: %d, %v", len(recs), err)
	}
	if recs, err := b.Pending(ctx, 10); err != nil || len(recs) != 1 {
		t.Fatalf("default outbox: %d, %v", len(recs), err)
	}
}

func TestMigrationSQLAppliesWithPlainExec(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{{}, {Schema: "own_tool", TablePrefix: "x_"}} {
		sqlText, err := MigrationSQL(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(sqlText, "CREATE TABLE") || strings.Contains(sqlText, "+goose") || strings.Contains(sqlText, "DROP TABLE") {
			t.Fatalf("MigrationSQL is not the up migrations alone:\n%s", sqlText)
		}
		if strings.Contains(sqlText, "{{") {
			t.Fatalf("MigrationSQL has unrendered template actions:\n%s", sqlText)
		}
		pg := pgtest.New(t)
		for i := range 2 { // idempotent
			if _, err := pg.DB().Exec(sqlText); err != nil {
				t.Fatalf("exec MigrationSQL(%+v), run %d: %v", cfg, i+1, err)
			}
		}
		s, err := New(pg.DB(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if s.MigrationSQL() != sqlText {
			t.Error("Store.MigrationSQL differs from MigrationSQL")
		}
		res, err := s.Append(context.Background(), "product-1", event.NoStream, evs(3))
		if err != nil || res.Version != 3 {
			t.Fatalf("append on a schema made by MigrationSQL: %+v, %v", res, err)
		}
		// Migrate can take over a schema made this way.
		if err := s.Migrate(context.Background()); err != nil {
			t.Fatalf("Migrate after MigrationSQL: %v", err)
		}
		if n := countRows(t, s, "events"); n != 3 {
			t.Errorf("Migrate after MigrationSQL left %d events", n)
		}
	}
}

func TestMissingSchemaSaysMigrate(t *testing.T) {
	t.Parallel()
	pg := pgtest.New(t)
	s, err := New(pg.DB(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = s.Append(ctx, "product-42", event.Any, evs(1))
	if !errors.Is(err, ErrNotMigrated) {
		t.Fatalf("Append before Migrate: %v, want ErrNotMigrated", err)
	}
	for _, want := range []string{"product-42", "Migrate", "cqrskit migrate up"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, err := s.ReadAll(ctx, event.Cursor{}, 10); !errors.Is(err, ErrNotMigrated) {
		t.Errorf("ReadAll: %v", err)
	}
	if _, err := s.Pending(ctx, 10); !errors.Is(err, ErrNotMigrated) {
		t.Errorf("Pending: %v", err)
	}
	_, err = load(t, s, "product-42", 1)
	if !errors.Is(err, ErrNotMigrated) {
		t.Errorf("Load: %v", err)
	}

	// A schema that does not exist.
	s2, _ := New(pg.DB(), Config{Schema: "nowhere"})
	if _, err := s2.Append(ctx, "product-42", event.Any, evs(1)); !errors.Is(err, ErrNotMigrated) {
		t.Errorf("Append in a missing schema: %v", err)
	}
}
