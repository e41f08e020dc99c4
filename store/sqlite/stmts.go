package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// stmts are the append path's statements, prepared once per store and
// reused on every pooled connection (database/sql keeps a prepared copy per
// connection). Parsing SQL is a fifth of a one-event append's cost. The
// zero value holds none: every statement is then prepared anew.
type stmts struct {
	head         *sql.Stmt // stream version + where this one event ID is stored, if it is
	streamVer    *sql.Stmt
	insertEvent  *sql.Stmt
	insertOutbox *sql.Stmt
	upsertStream *sql.Stmt
}

func (st *stmts) all() []**sql.Stmt {
	return []**sql.Stmt{&st.head, &st.streamVer, &st.insertEvent, &st.insertOutbox, &st.upsertStream}
}

// stmtCache holds the store's prepared statements.
type stmtCache struct {
	mu    sync.Mutex
	ready bool
	stmts stmts
}

// prepare returns the prepared statements, preparing them on first use. A
// failure (the schema is missing) is not remembered, so a later call after
// Migrate succeeds. It takes a connection from the pool: never call it while
// holding one (in a transaction), or a pool of one connection deadlocks.
func (s *Store) prepare(ctx context.Context) (stmts, error) {
	c := &s.stmtCache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ready {
		return c.stmts, nil
	}
	queries := []string{s.q.head, s.q.streamVersion, s.q.insertEvents(1), s.q.insertOutbox(1), s.q.upsertStream}
	var st stmts
	for i, p := range st.all() {
		var err error
		if *p, err = s.db.PrepareContext(ctx, queries[i]); err != nil {
			_ = st.close()
			return stmts{}, err
		}
	}
	c.stmts, c.ready = st, true
	return st, nil
}

// prepared returns the statements if they are prepared, else the zero
// stmts. It never waits for the pool.
func (s *Store) prepared() stmts {
	c := &s.stmtCache
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stmts
}

func (s *Store) closeStmts() error {
	c := &s.stmtCache
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.stmts.close()
	c.stmts, c.ready = stmts{}, false
	return err
}

func (st *stmts) close() error {
	var errs []error
	for _, p := range st.all() {
		if *p != nil {
			errs = append(errs, (*p).Close())
		}
	}
	return errors.Join(errs...)
}

// queryRow runs stmt in tx, or query unprepared when stmt is nil. In a
// transaction database/sql reuses the statement prepared on the
// transaction's connection, or prepares it there, without taking another
// connection from the pool.
func queryRow(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt, query string, args ...any) *sql.Row {
	if stmt == nil {
		return tx.QueryRowContext(ctx, query, args...)
	}
	return tx.StmtContext(ctx, stmt).QueryRowContext(ctx, args...)
}

// exec is queryRow for statements without rows.
func exec(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt, query string, args ...any) (sql.Result, error) {
	if stmt == nil {
		return tx.ExecContext(ctx, query, args...)
	}
	return tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
}
