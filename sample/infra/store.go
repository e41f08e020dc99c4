package infra

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/outbox"
	"github.com/cqrskit/cqrskit/projection"
	"github.com/cqrskit/cqrskit/sample/app"
	"github.com/cqrskit/cqrskit/store/postgres"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// sqlStore is what the sample needs of an event store: events in
// transactions, snapshots, the outbox, the idempotent handlers' marks and
// dead letters, and projection checkpoints. store/sqlite and
// store/postgres provide all of it.
type sqlStore interface {
	event.TxStore
	es.SnapshotStore
	outbox.Store
	handler.Store
	projection.CheckpointStore
}

var (
	_ sqlStore = (*sqlite.Store)(nil)
	_ sqlStore = (*postgres.Store)(nil)
)

// storage is the opened database with its store and what comes with it.
type storage struct {
	store sqlStore
	// pipeline is the store the relay, the consumers and the projection
	// use: on PostgreSQL in role all, the same database through a pool of
	// its own, so a burst of API requests cannot starve the pipeline that
	// makes their writes visible. Otherwise the same as store.
	pipeline sqlStore
	dialect  app.Dialect
	notifier outbox.Notifier // wakes the relay and the projection; nil: poll
	leader   outbox.Leader   // elects the one active relay among processes
	describe string
	close    func() error
}

// openStorage opens and migrates the store named by cfg: PostgreSQL when
// PostgresURL is set, else SQLite in the data directory.
func openStorage(ctx context.Context, cfg Config, log *slog.Logger) (*storage, error) {
	if cfg.usesSQLite() {
		path := cfg.sqlitePath()
		s, err := sqlite.Open(ctx, path, sqlite.Config{TablePrefix: cfg.TablePrefix, Logger: log})
		if err != nil {
			return nil, err
		}
		if err := s.Migrate(ctx); err != nil {
			s.Close()
			return nil, err
		}
		if err := app.Migrate(ctx, s.DB(), app.SQLite, log); err != nil {
			s.Close()
			return nil, err
		}
		// A lease row elects one relay among the processes sharing the file.
		leader, err := s.Leader(sqlite.LeaderConfig{})
		if err != nil {
			s.Close()
			return nil, err
		}
		st := &storage{store: s, pipeline: s, dialect: app.SQLite, leader: leader, describe: "SQLite " + path, close: s.Close}
		if cfg.Role == RoleAll {
			// The store's in-process signal wakes the relay and the
			// projection. In a process without the API nothing signals
			// them: they poll.
			st.notifier = s
		}
		return st, nil
	}
	db, err := sql.Open("pgx", cfg.PostgresURL)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL: %w", err)
	}
	// Room for the API's requests and the consumers, well below the
	// server's default max_connections of 100 when a few processes share it.
	// Keep the connections of a burst open: closing those beyond a smaller
	// idle cap and opening them again at the next burst costs a backend
	// start each (a fork and authentication), which at a few hundred
	// requests per second took more CPU than the requests themselves.
	// Idle ones close after a while instead.
	db.SetMaxOpenConns(cfg.PostgresMaxConns)
	db.SetMaxIdleConns(cfg.PostgresMaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	fail := func(err error) (*storage, error) {
		db.Close()
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		return fail(fmt.Errorf("connect to PostgreSQL %s: %w", redactURL(cfg.PostgresURL), err))
	}
	s, err := postgres.New(db, postgres.Config{TablePrefix: cfg.TablePrefix, Logger: log})
	if err != nil {
		return fail(err)
	}
	if err := s.Migrate(ctx); err != nil {
		return fail(err)
	}
	if err := app.Migrate(ctx, db, app.Postgres, log); err != nil {
		return fail(err)
	}
	pipeline, closeAll := s, db.Close
	if cfg.Role == RoleAll {
		pdb, err := sql.Open("pgx", cfg.PostgresURL)
		if err != nil {
			return fail(fmt.Errorf("open PostgreSQL: %w", err))
		}
		pdb.SetMaxOpenConns(pipelineConns)
		pdb.SetMaxIdleConns(pipelineConns)
		if pipeline, err = postgres.New(pdb, postgres.Config{TablePrefix: cfg.TablePrefix, Logger: log}); err != nil {
			pdb.Close()
			return fail(err)
		}
		closeAll = func() error { return errors.Join(pdb.Close(), db.Close()) }
	}
	listener, err := pipeline.Listener(cfg.PostgresURL)
	if err != nil {
		return fail(err)
	}
	leader, err := pipeline.Leader(postgres.LeaderConfig{})
	if err != nil {
		return fail(err)
	}
	return &storage{store: s, pipeline: pipeline, dialect: app.Postgres, notifier: listener, leader: leader,
		describe: "PostgreSQL " + redactURL(cfg.PostgresURL), close: closeAll}, nil
}

// pipelineConns is the size of the pipeline's own pool in role all: the
// relay's leadership session, its reads and deletes, two consumers and the
// projection.
const pipelineConns = 8
