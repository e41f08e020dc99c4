package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// Environment variables read by New.
const (
	// EnvPostgresURL names a server to create test databases on, as a URL
	// whose user may CREATE DATABASE, for example
	// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
	EnvPostgresURL = "CQRSKIT_TEST_POSTGRES_URL"
	// EnvRequirePostgres=1 turns "no PostgreSQL available" from a skip into
	// a failure listing why each provider was unavailable. CI sets it.
	EnvRequirePostgres = "CQRSKIT_REQUIRE_POSTGRES"
)

// maxTestConns caps each test database's pool: many tests run in parallel
// against one server whose max_connections is shared.
const maxTestConns = 10

// Database is one test's own PostgreSQL database.
type Database struct {
	// URL connects to the test's database.
	URL string
	// Name is the database's name.
	Name string

	db *sql.DB
}

// DB returns a pool on the test's database, opened with pgx's database/sql
// driver and closed at cleanup. It holds at most 10 connections; call
// SetMaxOpenConns for more.
func (p *Database) DB() *sql.DB { return p.db }

// New returns a fresh, empty database for the test, dropped at cleanup
// after its connections are terminated.
//
// The server comes from the first provider that works:
//
//  1. CQRSKIT_TEST_POSTGRES_URL: a database is created on that server. A
//     server named there that cannot be used fails the test.
//  2. initdb and pg_ctl on PATH or in /usr/lib/postgresql/*/bin: one
//     throw-away server per test process, started on first use in a
//     temporary directory on a free port (fsync off). When running as root
//     it runs as the "postgres" or "nobody" user. It is stopped and its
//     directory removed when the test process exits, by a small supervising
//     shell that waits on a pipe from this process.
//  3. Testcontainers' PostgreSQL module, when a Docker daemon is reachable;
//     the container is removed by Testcontainers' reaper when the process
//     exits.
//
// If none works the test is skipped, or fails when CQRSKIT_REQUIRE_POSTGRES=1.
func New(t testing.TB) *Database {
	t.Helper()
	return postgresFrom(t, defaultProviders)
}

// provider returns the admin URL of a running server, or why it cannot.
type provider struct {
	name   string
	server func() (string, error)
}

var defaultProviders = []provider{
	{"local initdb/pg_ctl", localServer},
	{"testcontainers", containerServer},
}

func postgresFrom(t testing.TB, providers []provider) *Database {
	t.Helper()
	if u := os.Getenv(EnvPostgresURL); u != "" {
		return postgresOn(t, u)
	}
	reasons := []string{fmt.Sprintf("  %s: not set", EnvPostgresURL)}
	for _, p := range providers {
		u, err := p.server()
		if err == nil {
			return postgresOn(t, u)
		}
		reasons = append(reasons, fmt.Sprintf("  %s: %v", p.name, err))
	}
	if os.Getenv(EnvRequirePostgres) == "1" {
		t.Fatalf("pgtest.New: no PostgreSQL available and %s=1:\n%s", EnvRequirePostgres, strings.Join(reasons, "\n"))
		return nil
	}
	t.Skipf("no PostgreSQL: set %s=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable (or %s=1 to see why initdb/Docker were unusable)",
		EnvPostgresURL, EnvRequirePostgres)
	return nil
}

// postgresOn creates a database for t on the server at serverURL.
func postgresOn(t testing.TB, serverURL string) *Database {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	admin, err := adminDB(serverURL)
	if err != nil {
		t.Fatalf("pgtest.New: %v", err)
	}
	if _, done := swept.LoadOrStore(serverURL, struct{}{}); !done {
		sweepStale(ctx, admin)
	}
	name := databaseName(t.Name())
	if err := createDatabase(ctx, admin, name); err != nil {
		t.Fatalf("pgtest.New: create database %s on %s: %v", name, redact(serverURL), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := dropDatabase(ctx, admin, name); err != nil {
			t.Errorf("pgtest.New: drop database %s: %v", name, err)
		}
	})

	dbURL, err := withDatabase(serverURL, name)
	if err != nil {
		t.Fatalf("pgtest.New: %v", err)
	}
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatalf("pgtest.New: open %s: %v", name, err)
	}
	db.SetMaxOpenConns(maxTestConns)
	db.SetMaxIdleConns(maxTestConns)
	// Registered after the drop, so it runs first.
	t.Cleanup(func() { _ = db.Close() })
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("pgtest.New: connect to %s: %v", name, err)
	}
	return &Database{URL: dbURL, Name: name, db: db}
}

var admins struct {
	mu  sync.Mutex
	dbs map[string]*sql.DB
}

// adminDB returns a small pool on serverURL for CREATE and DROP DATABASE,
// shared by all tests of the process and never closed.
func adminDB(serverURL string) (*sql.DB, error) {
	admins.mu.Lock()
	defer admins.mu.Unlock()
	if db, ok := admins.dbs[serverURL]; ok {
		return db, nil
	}
	if _, err := withDatabase(serverURL, "postgres"); err != nil {
		return nil, err
	}
	db, err := sql.Open("pgx", serverURL)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", redact(serverURL), err)
	}
	db.SetMaxOpenConns(4)
	db.SetConnMaxIdleTime(30 * time.Second)
	if admins.dbs == nil {
		admins.dbs = map[string]*sql.DB{}
	}
	admins.dbs[serverURL] = db
	return db, nil
}

func createDatabase(ctx context.Context, admin *sql.DB, name string) error {
	var err error
	for attempt := range 5 {
		// name is made of [a-z0-9_] only, so it needs no quoting.
		_, err = admin.ExecContext(ctx, "CREATE DATABASE "+name)
		var pgErr *pgconn.PgError
		// 55006: template1 is in use by another session; it passes.
		if !errors.As(err, &pgErr) || pgErr.Code != "55006" {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
	return err
}

func dropDatabase(ctx context.Context, admin *sql.DB, name string) error {
	// WITH (FORCE) terminates the connections too; the explicit terminate
	// also covers connections opened outside the test's pool.
	if _, err := admin.ExecContext(ctx,
		`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, name); err != nil {
		return err
	}
	_, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	return err
}

// databaseName returns a unique, valid database name that hints at the
// test and records when it was made (for sweepStale):
// cqrskit_<test>_<unix seconds, base 36>_<8 hex digits>.
func databaseName(testName string) string {
	var b strings.Builder
	b.WriteString("cqrskit_")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 36 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	b.WriteByte('_')
	b.WriteString(strconv.FormatInt(time.Now().Unix(), 36))
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(suffix[:]))
	return b.String()
}

// staleAfter is the age at which a test database left behind is dropped.
// Cleanups do not run when a test binary panics or is killed; no test
// runs this long.
const staleAfter = 2 * time.Hour

var swept sync.Map // server URL -> struct{}

// sweepStale drops test databases left behind by test processes that
// died, judged by the time in their name; New runs it once per server
// and process. A database still connected to is kept: DROP without FORCE
// refuses it.
func sweepStale(ctx context.Context, admin *sql.DB) {
	rows, err := admin.QueryContext(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'cqrskit\_%'`)
	if err != nil {
		return
	}
	var names []string
	for rows.Next() {
		var name string
		if rows.Scan(&name) == nil {
			names = append(names, name)
		}
	}
	_ = rows.Close()
	for _, name := range names {
		if created, ok := databaseCreated(name); ok && time.Since(created) > staleAfter {
			_, _ = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name)
		}
	}
}

// databaseCreated parses the time databaseName put in name.
func databaseCreated(name string) (time.Time, bool) {
	parts := strings.Split(name, "_")
	if len(parts) < 4 || parts[0] != "cqrskit" || len(parts[len(parts)-1]) != 8 {
		return time.Time{}, false
	}
	if _, err := hex.DecodeString(parts[len(parts)-1]); err != nil {
		return time.Time{}, false
	}
	secs, err := strconv.ParseInt(parts[len(parts)-2], 36, 64)
	created := time.Unix(secs, 0)
	if err != nil || created.Year() < 2024 || created.After(time.Now().Add(24*time.Hour)) {
		return time.Time{}, false
	}
	return created, true
}

// withDatabase returns serverURL pointing at database name.
func withDatabase(serverURL, name string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("server %q: want a URL such as postgres://user@host:5432/postgres?sslmode=disable", redact(serverURL))
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// redact hides a password in a URL for messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
