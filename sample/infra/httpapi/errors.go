package httpapi

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/sample/app"
	"github.com/cqrskit/cqrskit/sample/domain"
)

// ErrorBody is every error response: a message for people and, when one
// input is to blame, its name (a JSON field, a query parameter or a
// header).
type ErrorBody struct {
	Error string `json:"error"`
	Field string `json:"field"`
}

// requestError is an error the handler found in the request itself.
type requestError struct {
	status int
	field  string
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(field, msg string) error {
	return &requestError{status: http.StatusBadRequest, field: field, msg: msg}
}

// failure is an error to answer with; versionField names the query
// parameter blamed for a missing version (at_version, min_version).
type failure struct {
	err          error
	versionField string
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, field, msg string) {
	writeJSON(w, status, ErrorBody{Error: msg, Field: field})
}

// fail maps err to its status and writes it. The client gets a message
// about its request, never an internal one (socket addresses, SQL, the
// store's wording): errors it cannot act on are logged and answered with
// a generic text.
func (h *api) fail(w http.ResponseWriter, r *http.Request, f failure) {
	err := f.err
	var (
		re  *requestError
		fe  *domain.FieldError
		nc  *app.NotCaughtUpError
		nf  *app.NotFoundError
		vnf *app.VersionNotFoundError
		op  *net.OpError
	)
	switch {
	case errors.As(err, &re):
		writeError(w, re.status, re.field, re.msg)
	case errors.As(err, &fe):
		writeError(w, http.StatusBadRequest, fe.Field, fe.Error())
	case errors.As(err, &vnf):
		writeError(w, http.StatusNotFound, f.versionField, vnf.Error())
	case errors.Is(err, es.ErrVersionNotFound):
		h.logFailure(r, slog.LevelWarn, err)
		writeError(w, http.StatusNotFound, f.versionField, "the product has no such version")
	case errors.As(err, &nf):
		writeError(w, http.StatusNotFound, "", nf.Error())
	case errors.Is(err, app.ErrNotFound):
		writeError(w, http.StatusNotFound, "", app.ErrNotFound.Error())
	case errors.Is(err, app.ErrPreconditionFailed):
		writeError(w, http.StatusPreconditionFailed, "If-Match", message[*app.PreconditionError](err, app.ErrPreconditionFailed))
	case errors.Is(err, app.ErrSKUTaken):
		writeError(w, http.StatusConflict, "sku", message[*app.SKUTakenError](err, app.ErrSKUTaken))
	case errors.Is(err, domain.ErrInsufficientStock):
		writeError(w, http.StatusConflict, "delta", message[*domain.StockError](err, domain.ErrInsufficientStock))
	case errors.Is(err, domain.ErrDiscontinued):
		writeError(w, http.StatusConflict, "", message[*domain.DiscontinuedError](err, domain.ErrDiscontinued))
	case errors.Is(err, event.ErrConcurrencyConflict):
		h.logFailure(r, slog.LevelWarn, err)
		writeError(w, http.StatusConflict, "", "the product changed concurrently too often; retry")
	case errors.As(err, &nc):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, f.versionField, nc.Error())
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		w.WriteHeader(499)
	case errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "", "timed out; retry")
	case errors.As(err, &op), errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone):
		// The database (or another service) cannot be reached: worth a
		// retry, but the address is the operator's business.
		h.logFailure(r, slog.LevelError, err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "", "the database is unavailable; retry later")
	default:
		h.logFailure(r, slog.LevelError, err)
		writeError(w, http.StatusInternalServerError, "", "internal error; see the server log")
	}
}

// message is the text of err's detail, a T, without the context layers
// wrapped around it (repository and store wording); without a T, the
// sentinel's text.
func message[T error](err, sentinel error) string {
	if t, ok := errors.AsType[T](err); ok {
		return t.Error()
	}
	return sentinel.Error()
}

// logFailure logs an error whose detail the client is not shown.
func (h *api) logFailure(r *http.Request, level slog.Level, err error) {
	h.log.Log(r.Context(), level, "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
}

// logRequests logs each request at debug level.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		log.DebugContext(r.Context(), "http request", "method", r.Method, "path", r.URL.Path, "status", sw.status)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
