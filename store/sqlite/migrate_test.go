package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

var tables = []string{"streams", "events", "outbox", "snapshots", "processed",
	"dead_letters", "checkpoints", "relay_leases"}

func tableNames(t *testing.T, db *sql.DB) map[string]bool {
	t.Helper()
	rows, err := db.Query("SELECT name FROM sqlite_schema WHERE type = 'table'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	names := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names[n] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, sqlite.Config{})
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	names := tableNames(t, s.DB())
	for _, tbl := range append(tables, "schema_version") {
		if !names[sqlite.DefaultTablePrefix+tbl] {
			t.Errorf("table %s%s missing; have %v", sqlite.DefaultTablePrefix, tbl, names)
		}
	}
	if _, err := s.Append(ctx, "s-1", event.NoStream, []event.Event{newEvent("t", `{}`)}); err != nil {
		t.Fatalf("Append after migrating twice: %v", err)
	}
}

func TestMigratePrefix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	// Two stores with different prefixes share one file without clashing.
	a, err := sqlite.Open(ctx, path, sqlite.Config{TablePrefix: "app_"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sqlite.Open(ctx, path, sqlite.Config{TablePrefix: "other_"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, s := range []*sqlite.Store{a, b} {
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	names := tableNames(t, a.DB())
	for _, p := range []string{"app_", "other_"} {
		for _, tbl := range append(tables, "schema_version") {
			if !names[p+tbl] {
				t.Errorf("table %s%s missing", p, tbl)
			}
		}
	}
	if names["events"] || names["cqrs_events"] {
		t.Errorf("unprefixed or default-prefixed tables created: %v", names)
	}
	if _, err := a.Append(ctx, "s-1", event.NoStream, []event.Event{newEvent("t", `{}`)}); err != nil {
		t.Fatal(err)
	}
	if n := len(loadAll(t, a, "s-1")); n != 1 {
		t.Errorf("store app_ loaded %d events, want 1", n)
	}
	for _, err := range b.Load(ctx, "s-1", 1) {
		if !errors.Is(err, event.ErrStreamNotFound) {
			t.Errorf("store other_ Load: %v, want ErrStreamNotFound", err)
		}
	}
}

func TestMigrationSQLAppliesWithExec(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := sqlite.Config{TablePrefix: "ext_"}
	text, err := sqlite.MigrationSQL(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, "{{") || strings.Contains(text, "DROP TABLE") {
		t.Fatalf("MigrationSQL has template or down parts:\n%s", text)
	}
	s := openStore(t, cfg)
	if got := s.MigrationSQL(); got != text {
		t.Errorf("Store.MigrationSQL differs from MigrationSQL(cfg)")
	}
	if _, err := s.DB().ExecContext(ctx, text); err != nil {
		t.Fatalf("Exec(MigrationSQL): %v", err)
	}
	names := tableNames(t, s.DB())
	for _, tbl := range tables {
		if !names["ext_"+tbl] {
			t.Errorf("table ext_%s missing after Exec", tbl)
		}
	}
	if _, err := s.Append(ctx, "s-1", event.NoStream, []event.Event{newEvent("t", `{}`)}); err != nil {
		t.Fatalf("Append on a schema applied by hand: %v", err)
	}
	// Migrate afterwards records the versions without failing.
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate after Exec(MigrationSQL): %v", err)
	}
	if n := len(loadAll(t, s, "s-1")); n != 1 {
		t.Errorf("loaded %d events, want 1", n)
	}
}

func TestMissingSchemaSaysRunMigrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t, sqlite.Config{})
	_, err := s.Append(ctx, "s-1", event.Any, []event.Event{newEvent("t", `{}`)})
	if err == nil || !strings.Contains(err.Error(), "run Migrate") || !strings.Contains(err.Error(), "s-1") {
		t.Errorf("Append without schema: %v, want an error naming the stream and saying run Migrate", err)
	}
	for _, err := range s.Load(ctx, "s-1", 1) {
		if err == nil || !strings.Contains(err.Error(), "run Migrate") {
			t.Errorf("Load without schema: %v, want run Migrate", err)
		}
	}
	if _, err := s.Pending(ctx, 10); err == nil || !strings.Contains(err.Error(), "run Migrate") {
		t.Errorf("Pending without schema: %v, want run Migrate", err)
	}
}
