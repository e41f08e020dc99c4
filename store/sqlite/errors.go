package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// querier is what *sql.DB, *sql.Tx and *sql.Conn have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// isUniqueViolation reports a UNIQUE or PRIMARY KEY constraint failure.
func isUniqueViolation(err error) bool {
	switch sqliteCode(err) {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

func isBusy(err error) bool {
	return sqliteCode(err)&0xff == sqlite3.SQLITE_BUSY
}

// explain adds what an operator needs to act on err: "run Migrate" when the
// table is missing, the transaction mode when the database was busy.
// table is the main table of the failed operation; q is where to look for
// it (the failed operation's transaction, if any, so a pool of one
// connection cannot deadlock).
func (s *Store) explain(ctx context.Context, q querier, table string, err error) error {
	switch {
	case err == nil:
		return nil
	case sqliteCode(err) == sqlite3.SQLITE_ERROR:
		var n int
		qerr := q.QueryRowContext(context.WithoutCancel(ctx),
			"SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?", table).Scan(&n)
		if qerr == nil && n == 0 {
			return fmt.Errorf("table %s does not exist (run Migrate): %w", table, err)
		}
	case isBusy(err):
		return fmt.Errorf("database is locked by another writer; open it with Open, or begin transactions with BEGIN IMMEDIATE (DSN _txlock=immediate) and set a busy_timeout: %w", err)
	}
	return err
}
