package sqlite

import (
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/cqrskit/cqrskit/handler"
)

var _ handler.TransientClassifier = (*Store)(nil)

// IsTransient reports whether err is SQLite's passing fault, not the
// caller's: the database busy or a table locked by another connection
// (SQLITE_BUSY, SQLITE_LOCKED: the busy timeout ran out), a disk I/O error
// or a full disk (SQLITE_IOERR, SQLITE_FULL). A handler retries such an
// error without counting an attempt (handler.TransientClassifier).
func (s *Store) IsTransient(err error) bool {
	switch sqliteCode(err) & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL:
		return true
	}
	return false
}
