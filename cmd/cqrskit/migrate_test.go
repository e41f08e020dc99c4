package main

import (
	"strings"
	"testing"

	"github.com/cqrskit/cqrskit/testutil/pgtest"
)

func TestMigrate(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		d := emptyDB(t, kind)

		var before migrationReport
		d.run(t, "migrate", "status", "-o", "json").want(t, exitOK).json(t, &before)
		if before.TablesExist || before.Pending == 0 || len(before.Migrations) != before.Pending {
			t.Fatalf("status before migrate up: %+v", before)
		}
		if r := d.run(t, "migrate", "status").want(t, exitOK); !strings.Contains(r.stdout, "pending: run `cqrskit migrate up`") {
			t.Errorf("status text does not ask for migrate up:\n%s", r.stdout)
		}

		r := d.run(t, "migrate", "up").want(t, exitOK)
		if !strings.Contains(r.stdout, "applied 00001_schema.sql") {
			t.Errorf("migrate up does not name the migration it applied:\n%s", r.stdout)
		}
		var up migrationReport
		d.run(t, "migrate", "up", "-o", "json").want(t, exitOK).json(t, &up)
		if len(up.Applied) != 0 || up.Pending != 0 || !up.TablesExist {
			t.Errorf("second migrate up: %+v", up)
		}

		var after migrationReport
		d.run(t, "migrate", "status", "-o", "json").want(t, exitOK).json(t, &after)
		if after.Pending != 0 || !after.TablesExist {
			t.Fatalf("status after migrate up: %+v", after)
		}
		for _, m := range after.Migrations {
			if !m.Applied || m.AppliedAt.IsZero() {
				t.Errorf("migration %+v: want applied with a time", m)
			}
		}
		if r := d.run(t, "migrate", "status").want(t, exitOK); !strings.Contains(r.stdout, "applied") || !strings.Contains(r.stdout, "is up to date") {
			t.Errorf("status text:\n%s", r.stdout)
		}
		// The tables are usable.
		d.run(t, "streams", "list").want(t, exitOK)
	})
}

func TestMigrateCreatesSQLiteFile(t *testing.T) {
	t.Parallel()
	url := "sqlite://" + t.TempDir() + "/sub/dir/events.db"
	cli(t, []string{envDB + "=" + url}, "migrate", "up").want(t, exitOK)
	cli(t, []string{envDB + "=" + url}, "outbox", "status").want(t, exitOK)
}

func TestMigrateSchemaAndPrefix(t *testing.T) {
	t.Parallel()
	pg := pgtest.New(t)
	flags := []string{"--db", pg.URL, "--schema", "ops", "--table-prefix", "es_"}
	r := cli(t, nil, append(flags, "migrate", "up")...).want(t, exitOK)
	if !strings.Contains(r.stdout, `schema ops, table prefix "es_"`) {
		t.Errorf("migrate up does not name the schema and prefix:\n%s", r.stdout)
	}
	var exists bool
	if err := pg.DB().QueryRow(`SELECT to_regclass('ops.es_events') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		t.Fatalf("ops.es_events: exists %v, err %v", exists, err)
	}
	cli(t, nil, append(flags, "streams", "list")...).want(t, exitOK)
	// The same through the environment.
	cli(t, []string{envDB + "=" + pg.URL, envSchema + "=ops", envTablePrefix + "=es_"}, "outbox", "status").want(t, exitOK)
	// Without them the default tables are missing.
	cli(t, nil, "--db", pg.URL, "streams", "list").want(t, exitError).oneLineError(t, "run `cqrskit migrate up`")
}

func TestMigrateSQL(t *testing.T) {
	t.Parallel()
	// No connection is made: the host does not exist.
	pgSQL := cli(t, nil, "--db", "postgres://u@db.invalid/x", "--schema", "ops", "--table-prefix", "es_", "migrate", "sql").want(t, exitOK).stdout
	for _, want := range []string{"CREATE SCHEMA IF NOT EXISTS ops", "CREATE TABLE IF NOT EXISTS ops.es_events", "ops.es_outbox"} {
		if !strings.Contains(pgSQL, want) {
			t.Errorf("postgres SQL lacks %q", want)
		}
	}
	if strings.Contains(pgSQL, "+goose") || strings.Contains(pgSQL, "DROP TABLE") {
		t.Error("postgres SQL contains goose annotations or the down part")
	}
	liteSQL := cli(t, nil, "migrate", "sql", "--dialect", "sqlite").want(t, exitOK).stdout
	if !strings.Contains(liteSQL, "CREATE TABLE IF NOT EXISTS cqrs_events") || strings.Contains(liteSQL, "DROP TABLE") {
		t.Errorf("sqlite SQL:\n%s", liteSQL)
	}
}
