package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/internal/pglocal"
)

func TestPostgresGivesFreshIsolatedDatabases(t *testing.T) {
	t.Parallel()
	a, b := New(t), New(t)
	if a.Name == b.Name || a.URL == b.URL {
		t.Fatalf("two calls gave the same database %s", a.Name)
	}
	for _, pg := range []*Database{a, b} {
		if n := countUserTables(t, pg.DB()); n != 0 {
			t.Errorf("database %s is not empty: %d tables", pg.Name, n)
		}
	}
	if _, err := a.DB().Exec(`CREATE TABLE only_in_a (id int)`); err != nil {
		t.Fatal(err)
	}
	if n := countUserTables(t, b.DB()); n != 0 {
		t.Errorf("a table created in %s shows in %s", a.Name, b.Name)
	}
	// URL reaches the same database as DB.
	other, err := sql.Open("pgx", a.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if n := countUserTables(t, other); n != 1 {
		t.Errorf("URL of %s sees %d tables, want 1", a.Name, n)
	}
}

func TestPostgresDropsTheDatabaseAtCleanup(t *testing.T) {
	t.Parallel()
	var name, serverURL string
	t.Run("inner", func(t *testing.T) {
		pg := New(t)
		name = pg.Name
		serverURL = strings.Replace(pg.URL, "/"+pg.Name, "/postgres", 1)
		// A connection outside the pool must not block the drop.
		extra, err := sql.Open("pgx", pg.URL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = extra.Close() })
		if err := extra.Ping(); err != nil {
			t.Fatal(err)
		}
	})
	if name == "" {
		t.Skip("inner test was skipped")
	}
	admin, err := adminDB(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	var exists bool
	if err := admin.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after cleanup", name)
	}
}

// TestLocalProvider starts the initdb/pg_ctl server directly, whatever
// CQRSKIT_TEST_POSTGRES_URL says, so the fallback stays working.
func TestLocalProvider(t *testing.T) {
	t.Parallel()
	if _, err := pglocal.FindBin(""); err != nil {
		if os.Getenv(EnvRequirePostgres) == "1" {
			t.Fatalf("local provider: %v", err)
		}
		t.Skipf("local provider unavailable: %v", err)
	}
	serverURL, err := localServer()
	if err != nil {
		t.Fatalf("local provider: %v", err)
	}
	pg := postgresOn(t, serverURL)
	var version string
	if err := pg.DB().QueryRow(`SHOW server_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	var fsync string
	if err := pg.DB().QueryRow(`SHOW fsync`).Scan(&fsync); err != nil {
		t.Fatal(err)
	}
	if fsync != "off" {
		t.Errorf("fsync = %s on the throw-away server, want off", fsync)
	}
	t.Logf("local server %s, version %s, database %s", redact(serverURL), version, pg.Name)

	// A second database on the same server is independent.
	pg2 := postgresOn(t, serverURL)
	if pg2.Name == pg.Name {
		t.Fatal("same database twice")
	}
	again, err := localServer()
	if err != nil || again != serverURL {
		t.Fatalf("second call started another server: %s, %v", again, err)
	}
}

func TestDatabaseName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"TestX", "TestContract/Append/Exactly(3)_with-Ümlaut", strings.Repeat("x", 200)} {
		got := databaseName(name)
		if len(got) > 63 {
			t.Errorf("databaseName(%q) = %q: longer than 63", name, got)
		}
		for _, r := range got {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
				t.Errorf("databaseName(%q) = %q: character %q needs quoting", name, got, r)
			}
		}
	}
	if a, b := databaseName("T"), databaseName("T"); a == b {
		t.Error("databaseName is not unique")
	}
	created, ok := databaseCreated(databaseName("TestX/sub_1"))
	if !ok || time.Since(created) > time.Minute || time.Since(created) < -time.Minute {
		t.Errorf("databaseCreated(databaseName(...)) = %v, %v", created, ok)
	}
	for _, other := range []string{"cqrskit_testx_ab12cd34ef56", "cqrskit_x", "postgres", "cqrskit_t_zzzzzzzzzzzz_0123abcd"} {
		if _, ok := databaseCreated(other); ok {
			t.Errorf("databaseCreated(%q) parsed a time", other)
		}
	}
}

func TestWithDatabase(t *testing.T) {
	t.Parallel()
	got, err := withDatabase("postgres://u:secret@h:5432/postgres?sslmode=disable", "db1")
	if err != nil || got != "postgres://u:secret@h:5432/db1?sslmode=disable" {
		t.Errorf("withDatabase = %q, %v", got, err)
	}
	if _, err := withDatabase("host=h user=u", "db1"); err == nil {
		t.Error("a keyword/value DSN was accepted")
	}
	if r := redact("postgres://u:secret@h/postgres"); strings.Contains(r, "secret") {
		t.Errorf("redact kept the password: %s", r)
	}
}

func countUserTables(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	err := db.QueryRowContext(context.Background(),
		`SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// fakeTB records how New gave up.
type fakeTB struct {
	*testing.T
	skipped, fatal string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestPostgresWithoutAnyProvider(t *testing.T) {
	unavailable := []provider{
		{"local initdb/pg_ctl", func() (string, error) { return "", errors.New("initdb not found") }},
		{"testcontainers", func() (string, error) { return "", errors.New("no Docker daemon") }},
	}
	run := func() *fakeTB {
		f := &fakeTB{T: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			postgresFrom(f, unavailable)
			t.Error("postgresFrom returned without a server")
		}()
		<-done
		return f
	}
	t.Setenv(EnvPostgresURL, "")

	t.Setenv(EnvRequirePostgres, "")
	f := run()
	if f.skipped == "" || strings.Contains(f.skipped, "\n") || !strings.Contains(f.skipped, EnvPostgresURL+"=postgres://") {
		t.Errorf("skip message %q: want one line naming %s", f.skipped, EnvPostgresURL)
	}

	t.Setenv(EnvRequirePostgres, "1")
	f = run()
	for _, want := range []string{EnvPostgresURL + ": not set", "initdb not found", "no Docker daemon"} {
		if !strings.Contains(f.fatal, want) {
			t.Errorf("failure %q does not say %q", f.fatal, want)
		}
	}
}

func TestSweepStaleDropsOldTestDatabases(t *testing.T) {
	t.Parallel()
	pg := New(t) // a server, and sweeps done for this process
	serverURL := strings.Replace(pg.URL, "/"+pg.Name, "/postgres", 1)
	admin, err := adminDB(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	old := fmt.Sprintf("cqrskit_sweeptest_%s_%s", strconv.FormatInt(time.Now().Add(-3*time.Hour).Unix(), 36), "0123abcd")
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+old); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP DATABASE IF EXISTS " + old) })
	sweepStale(ctx, admin)
	exists := func(name string) bool {
		var ok bool
		if err := admin.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if exists(old) {
		t.Errorf("stale database %s survived the sweep", old)
	}
	if !exists(pg.Name) {
		t.Errorf("the sweep dropped the live database %s", pg.Name)
	}
}
