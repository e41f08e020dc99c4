package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/outbox"
	"github.com/cqrskit/cqrskit/projection"
	"github.com/cqrskit/cqrskit/store/postgres"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// sqlStore is what the scenarios use of a store; store/postgres and
// store/sqlite provide all of it.
type sqlStore interface {
	event.TxStore
	es.SnapshotStore
	outbox.Store
	handler.Store
	projection.CheckpointStore
	projection.Counter
}

var (
	_ sqlStore = (*postgres.Store)(nil)
	_ sqlStore = (*sqlite.Store)(nil)
)

// backend is a migrated store on a scenario's scratch storage, with what
// the raw loops need to write the same tables.
type backend struct {
	kind  string // "postgres" or "sqlite"
	store sqlStore
	db    *sql.DB
	close func() error // closes the store and drops the storage
}

func (b *backend) postgres() bool { return b.kind == "postgres" }

// table is the name of one of the store's tables (default prefix "cqrs_").
func (b *backend) table(name string) string { return "cqrs_" + name }

// openBackend opens and migrates a store on new scratch storage. maxConns
// sizes the PostgreSQL pool. close closes the store and drops the storage.
func (e *env) openBackend(ctx context.Context, name string, maxConns int) (*backend, error) {
	s, err := e.newScratch(ctx, name)
	if err != nil {
		return nil, err
	}
	b, err := e.openStore(ctx, s, maxConns)
	if err != nil {
		return nil, errors.Join(err, s.drop())
	}
	closeStore := b.close
	b.close = func() error { return errors.Join(closeStore(), s.drop()) }
	return b, nil
}

// openStore opens and migrates a store on s; close closes the store only.
func (e *env) openStore(ctx context.Context, s *scratch, maxConns int) (*backend, error) {
	if e.cfg.store == "sqlite" {
		st, err := sqlite.Open(ctx, filepath.Join(s.dir, "bench.db"), sqlite.Config{Logger: e.log})
		if err != nil {
			return nil, err
		}
		if err := st.Migrate(ctx); err != nil {
			return nil, errors.Join(err, st.Close())
		}
		return &backend{kind: "sqlite", store: st, db: st.DB(), close: st.Close}, nil
	}
	db, err := sql.Open("pgx", s.url)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	st, err := postgres.New(db, postgres.Config{Logger: e.log})
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	if err := st.Migrate(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("migrate scratch database: %w", err), db.Close())
	}
	return &backend{kind: "postgres", store: st, db: db, close: db.Close}, nil
}

// steadyState makes a fresh PostgreSQL store look like a live one before
// it is measured: prefill events (in streams of type "cqrsbench", which no
// consumer subscribes to), then ANALYZE, as autovacuum would within a
// minute. Without it, statements prepared on the empty tables keep
// generic plans that scan the events table sequentially (the append's
// duplicate-ID check) and slow down as it grows, until autovacuum's
// first ANALYZE replans them; see docs/BENCHMARKS.md. SQLite needs
// neither: it does nothing there.
func (e *env) steadyState(ctx context.Context, b *backend) error {
	if !b.postgres() || e.sizes.Prefill == 0 {
		return nil
	}
	if err := fill(ctx, e, b, "prefill", "cqrsbench", "cqrsbench-prefill", e.sizes.Prefill, 1000, func(int) []byte { return []byte(`{}`) }); err != nil {
		return err
	}
	return analyze(ctx, b.db)
}

// analyze refreshes the planner's statistics of every table (PostgreSQL);
// cached plans of the tables are replanned on their next use.
func analyze(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	return nil
}
