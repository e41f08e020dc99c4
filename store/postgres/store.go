package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/outbox"
)

// Store is a PostgreSQL event store, snapshot store and outbox. It is safe
// for concurrent use.
type Store struct {
	db         *sql.DB
	cfg        Config
	log        *slog.Logger
	migrations fstest.MapFS
	q          queries
	horizon    *horizonProbe // horizon.go
}

var (
	_ event.TxStore      = (*Store)(nil)
	_ es.SnapshotStore   = (*Store)(nil)
	_ es.SnapshotTxStore = (*Store)(nil)
	_ outbox.Store       = (*Store)(nil)
)

// ErrNotMigrated reports that the store's tables are missing.
var ErrNotMigrated = errors.New("cqrskit tables are missing: run Store.Migrate or `cqrskit migrate up`")

// New returns a store on db, which must use a PostgreSQL driver for
// database/sql (pgx's stdlib is the tested one). New does not touch the
// database; call Migrate to create the tables.
func New(db *sql.DB, cfg Config) (*Store, error) {
	if db == nil {
		return nil, errors.New("postgres.New: db is nil")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	files, err := renderMigrations(cfg)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, cfg: cfg, log: cfg.Logger, migrations: files, q: newQueries(cfg)}
	s.horizon = newHorizonProbe(db, cfg, s.q)
	registerHorizonGauge(s, cfg.MeterProvider, s.Table("events"))
	return s, nil
}

// DB returns the database the store uses, for beginning the transactions
// passed to AppendTx.
func (s *Store) DB() *sql.DB { return s.db }

// NotifyChannel is the channel notified, at commit, by every transaction
// that writes outbox rows; a relay LISTENs on it. It is the table prefix
// followed by "outbox", after "schema." when a Schema is set.
func (s *Store) NotifyChannel() string { return notifyChannel(s.cfg) }

// Table returns the qualified name of one of the store's tables, for
// example Table("events") is "cqrs_events" with the default
// configuration. Other packages' SQL (handlers, projections) uses it.
func (s *Store) Table(name string) string { return s.cfg.templateData().Q + s.cfg.TablePrefix + name }

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// wrap adds op to err and recognises a database without the store's tables.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "42P01", "3F000": // undefined_table, invalid_schema_name
			return fmt.Errorf("%s: %w: %w", op, ErrNotMigrated, err)
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return fmt.Errorf("%s: %w: PostgreSQL aborted the transaction (SQLSTATE %s, %s) because a concurrent transaction touched the same rows; nothing of it is stored: roll it back and run the whole transaction again: %w",
				op, event.ErrRetryable, pgErr.Code, retryReason(pgErr.Code), err)
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

func retryReason(code string) string {
	if code == "40P01" {
		return "deadlock detected"
	}
	return "serialization failure under REPEATABLE READ or SERIALIZABLE"
}

// uniqueViolation returns the constraint a unique violation hit, or "".
func uniqueViolation(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return pgErr.ConstraintName
	}
	return ""
}

// queries holds the store's SQL with table names filled in.
type queries struct {
	appendAny, appendNoStream, appendStreamExists, appendExactly string
	diagnose, streamVersion, streamExists                        string
	load, readAll, horizonWaiting                                string
	saveSnapshot, loadSnapshot                                   string

	outbox      outboxQueries     // outbox.go
	processed   processedQueries  // processed.go
	deadLetters deadLetterQueries // dead_letters.go
	checkpoint  checkpointQueries // checkpoint.go
}

func newQueries(cfg Config) queries {
	d := cfg.templateData()
	r := strings.NewReplacer(
		"{streams}", d.Q+d.Prefix+"streams",
		"{events}", d.Q+d.Prefix+"events",
		"{outbox}", d.Q+d.Prefix+"outbox",
		"{snapshots}", d.Q+d.Prefix+"snapshots",
	)
	var q queries
	q.appendAny = r.Replace(appendSQL(casAny))
	q.appendNoStream = r.Replace(appendSQL(casNoStream))
	q.appendStreamExists = r.Replace(appendSQL(casStreamExists))
	q.appendExactly = r.Replace(appendSQL(casExactly))
	q.diagnose = r.Replace(diagnoseSQL)
	q.streamVersion = r.Replace(`SELECT coalesce((SELECT version FROM {streams} WHERE stream_id = $1), 0)`)
	q.streamExists = r.Replace(`SELECT EXISTS (SELECT 1 FROM {streams} WHERE stream_id = $1)`)
	q.load = r.Replace(loadSQL)
	q.readAll = r.Replace(readAllSQL)
	q.horizonWaiting = r.Replace(waitingSQL)
	q.outbox = newOutboxQueries(cfg)
	q.saveSnapshot = r.Replace(saveSnapshotSQL)
	q.loadSnapshot = r.Replace(`SELECT version, schema_version, data, created_at FROM {snapshots} WHERE stream_id = $1`)
	q.processed = newProcessedQueries(cfg)
	q.deadLetters = newDeadLetterQueries(cfg)
	q.checkpoint = newCheckpointQueries(cfg)
	return q
}

// tableReplacer replaces {name} with the qualified table of each name.
func tableReplacer(cfg Config, names ...string) *strings.Replacer {
	d := cfg.templateData()
	var pairs []string
	for _, n := range names {
		pairs = append(pairs, "{"+n+"}", d.Q+d.Prefix+n)
	}
	return strings.NewReplacer(pairs...)
}
