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
// sizes the PostgreSQL pool.
func (e *env) openBackend(ctx context.Context, name string, maxConns int) (*backend, error) {
	s, err := e.newScratch(ctx, name)
	if err != nil {
		return nil, err
	}
	fail := func(err error, closers ...func() error) (*backend, error) {
		for _, c := range closers {
			err = errors.Join(err, c())
		}
		return nil, errors.Join(err, s.drop())
	}
	if e.cfg.store == "sqlite" {
		st, err := sqlite.Open(ctx, filepath.Join(s.dir, "bench.db"), sqlite.Config{Logger: e.log})
		if err != nil {
			return fail(err)
		}
		if err := st.Migrate(ctx); err != nil {
			return fail(err, st.Close)
		}
		return &backend{kind: "sqlite", store: st, db: st.DB(), close: func() error { return errors.Join(st.Close(), s.drop()) }}, nil
	}
	db, err := sql.Open("pgx", s.url)
	if err != nil {
		return fail(err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	st, err := postgres.New(db, postgres.Config{Logger: e.log})
	if err != nil {
		return fail(err, db.Close)
	}
	if err := st.Migrate(ctx); err != nil {
		return fail(fmt.Errorf("migrate scratch database: %w", err), db.Close)
	}
	return &backend{kind: "postgres", store: st, db: db, close: func() error { return errors.Join(db.Close(), s.drop()) }}, nil
}
