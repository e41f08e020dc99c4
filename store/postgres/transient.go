package postgres

import (
	"errors"
	"io"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cqrskit/cqrskit/handler"
)

var _ handler.TransientClassifier = (*Store)(nil)

// IsTransient reports whether err is PostgreSQL's passing fault, not the
// caller's: a serialization failure or deadlock (SQLSTATE class 40), a
// lost connection (class 08, a connection the driver closed, a read cut
// short), the server shutting down or starting (57P01-57P03), a statement
// or lock timeout or cancel (57014, 55P03), exhausted resources (class 53)
// or a system error (class 58). A handler retries such an error without
// counting an attempt (handler.TransientClassifier).
func (s *Store) IsTransient(err error) bool { return transientError(err) }

func transientError(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", // admin_shutdown, crash_shutdown, cannot_connect_now
			"57014", "55P03": // query_canceled, lock_not_available
			return true
		}
		switch pgErr.Code[:min(2, len(pgErr.Code))] {
		case "40", "08", "53", "58": // transaction rollback, connection, resources, system
			return pgErr.Code != "40002" // integrity_constraint_violation: the data's fault
		}
		return false
	}
	var connErr *pgconn.ConnectError
	return errors.As(err, &connErr) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}
