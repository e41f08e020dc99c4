package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/cqrskit/cqrskit/store"
	"github.com/cqrskit/cqrskit/store/postgres"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// sqlStore is what the commands need from a store: the operator's view
// (store.Admin) and, declared by each command file, the part of the core
// interfaces it uses. *postgres.Store and *sqlite.Store implement it as
// they are.
type sqlStore interface {
	store.Admin
	logReader
	outboxReader
	deadLetterStore
	checkpointStore
}

var (
	_ sqlStore = (*postgres.Store)(nil)
	_ sqlStore = (*sqlite.Store)(nil)
)

// backend is an open store.
type backend interface {
	sqlStore
	// String names the database for messages, without credentials.
	String() string
	Close() error
}

// dbBackend is a store with its database's name and how to close it.
type dbBackend struct {
	sqlStore
	where string
	close func() error
}

func (b *dbBackend) String() string { return b.where }

func (b *dbBackend) Close() error { return b.close() }

// postgresStore returns b's store if it is a PostgreSQL one, for what only
// PostgreSQL has (the doctor's checks, transaction ids).
func postgresStore(b backend) (*postgres.Store, bool) {
	db, ok := b.(*dbBackend)
	if !ok {
		return nil, false
	}
	pg, ok := db.sqlStore.(*postgres.Store)
	return pg, ok
}

// connectTimeout bounds connecting to PostgreSQL when the URL sets no
// connect_timeout.
const connectTimeout = 10 * time.Second

// dbKind is the database a URL names.
type dbKind int

const (
	kindPostgres dbKind = iota + 1
	kindSQLite
)

// dbTarget is a parsed --db URL.
type dbTarget struct {
	kind dbKind
	pg   *pgx.ConnConfig // kindPostgres
	path string          // kindSQLite
}

const sqlitePrefix = "sqlite://"

// parseDB parses a --db URL. Its errors are one line and never show a
// password.
func parseDB(raw string) (dbTarget, error) {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok {
		return dbTarget{}, fmt.Errorf("bad database URL %q: want postgres://USER@HOST:PORT/DBNAME or sqlite://PATH", redactURL(raw))
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		cfg, err := pgx.ParseConfig(raw)
		if err != nil {
			// pgconn's message redacts the password.
			return dbTarget{}, fmt.Errorf("bad database URL: %v", err)
		}
		if cfg.RuntimeParams["application_name"] == "" {
			cfg.RuntimeParams["application_name"] = "cqrskit-cli"
		}
		if cfg.ConnectTimeout == 0 {
			cfg.ConnectTimeout = connectTimeout
		}
		return dbTarget{kind: kindPostgres, pg: cfg}, nil
	case "sqlite":
		path := raw[len(sqlitePrefix):]
		if path == "" || strings.ContainsAny(path, "?#") {
			return dbTarget{}, fmt.Errorf("bad database URL %q: want sqlite://PATH, a file path without query (sqlite:///abs/events.db or sqlite://data/events.db)", raw)
		}
		return dbTarget{kind: kindSQLite, path: path}, nil
	}
	return dbTarget{}, fmt.Errorf("bad database URL %q: scheme %q is not supported; want postgres:// or sqlite://", redactURL(raw), scheme)
}

// redactURL hides what follows "user:" in a URL's user info.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return raw
	}
	if user, _, hasPw := strings.Cut(rest[:at], ":"); hasPw {
		return scheme + "://" + user + ":xxxxx" + rest[at:]
	}
	return raw
}

// target parses the --db flag (or $CQRSKIT_DB) and checks that the other
// global flags suit it.
func (a *app) target() (dbTarget, error) {
	if a.dbURL == "" {
		return dbTarget{}, usagef("no database: pass --db postgres://... or --db sqlite://PATH, or set %s", envDB)
	}
	t, err := parseDB(a.dbURL)
	if err != nil {
		return dbTarget{}, err
	}
	if t.kind == kindSQLite && a.schema != "" {
		return dbTarget{}, usagef("--schema applies to PostgreSQL only; SQLite tables are named by --table-prefix")
	}
	return t, nil
}

// openMode says what open expects of the database.
type openMode int

const (
	// needTables: the cqrskit tables must exist (every command but
	// migrate).
	needTables openMode = iota
	// mayBeEmpty: the database must exist, its tables need not.
	mayBeEmpty
	// create: create the SQLite file if missing (migrate up).
	create
)

// open connects to the database and returns its store.
func (a *app) open(ctx context.Context, mode openMode) (backend, error) {
	t, err := a.target()
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.DiscardHandler)
	if a.verbose {
		logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var b backend
	switch t.kind {
	case kindPostgres:
		b, err = openPostgres(ctx, t.pg, postgres.Config{Schema: a.schema, TablePrefix: a.prefix, Logger: logger})
	case kindSQLite:
		if mode != create {
			if _, serr := os.Stat(t.path); errors.Is(serr, os.ErrNotExist) {
				return nil, fmt.Errorf("no SQLite database at %s: create it with `cqrskit migrate up`", t.path)
			}
		}
		b, err = openSQLite(ctx, t.path, sqlite.Config{TablePrefix: a.prefix, Logger: logger})
	}
	if err != nil {
		return nil, err
	}
	if mode == needTables {
		ok, err := b.TablesExist(ctx)
		if err == nil && !ok {
			err = fmt.Errorf("%s has no cqrskit tables: run `cqrskit migrate up`", b)
		}
		if err != nil {
			b.Close()
			return nil, err
		}
	}
	return b, nil
}

// withBackend opens the database, runs f and closes the database.
func (a *app) withBackend(ctx context.Context, mode openMode, f func(backend) error) error {
	b, err := a.open(ctx, mode)
	if err != nil {
		return err
	}
	defer b.Close()
	return f(b)
}

// describePostgres names a PostgreSQL database and the store's place in it.
func describePostgres(cfg *pgx.ConnConfig, schema, prefix string) string {
	return fmt.Sprintf("PostgreSQL database %q on %s (schema %s, table prefix %q)", cfg.Database,
		net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port)), cmp.Or(schema, "from search_path"), cmp.Or(prefix, postgres.DefaultTablePrefix))
}

// openPostgres connects and checks that the server answers.
func openPostgres(ctx context.Context, cfg *pgx.ConnConfig, scfg postgres.Config) (backend, error) {
	where := describePostgres(cfg, scfg.Schema, scfg.TablePrefix)
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(4)
	s, err := postgres.New(db, scfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, connectError(where, err)
	}
	return &dbBackend{sqlStore: s, where: where, close: db.Close}, nil
}

// connectError says why a connection failed, in one line.
func connectError(where string, err error) error {
	var (
		pgErr *pgconn.PgError
		opErr *net.OpError
		dnsEr *net.DNSError
	)
	switch {
	case errors.As(err, &pgErr):
		return fmt.Errorf("cannot connect to %s: %s (SQLSTATE %s)", where, pgErr.Message, pgErr.Code)
	case errors.As(err, &dnsEr):
		return fmt.Errorf("cannot connect to %s: %v", where, dnsEr)
	case errors.As(err, &opErr):
		return fmt.Errorf("cannot connect to %s: server unreachable: %v", where, opErr)
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err):
		return fmt.Errorf("cannot connect to %s: no answer within the connect timeout", where)
	}
	return fmt.Errorf("cannot connect to %s: %w", where, err)
}

// openSQLite opens the database file, creating it if missing.
func openSQLite(ctx context.Context, path string, cfg sqlite.Config) (backend, error) {
	s, err := sqlite.Open(ctx, path, cfg)
	if err != nil {
		return nil, err
	}
	return &dbBackend{sqlStore: s, where: fmt.Sprintf("SQLite database %s (table prefix %q)", path, cmp.Or(cfg.TablePrefix, sqlite.DefaultTablePrefix)), close: s.Close}, nil
}
