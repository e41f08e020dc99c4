package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
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

// fail maps err to its status and writes it. Errors the client cannot act
// on are logged and reported as 500 without their detail.
func (h *api) fail(w http.ResponseWriter, r *http.Request, f failure) {
	err := f.err
	var (
		re *requestError
		fe *domain.FieldError
		nc *NotCaughtUpError
	)
	switch {
	case errors.As(err, &re):
		writeError(w, re.status, re.field, re.msg)
	case errors.As(err, &fe):
		writeError(w, http.StatusBadRequest, fe.Field, fe.Error())
	case errors.Is(err, es.ErrVersionNotFound):
		writeError(w, http.StatusNotFound, f.versionField, err.Error())
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "", err.Error())
	case errors.Is(err, ErrPreconditionFailed):
		writeError(w, http.StatusPreconditionFailed, "If-Match", err.Error())
	case errors.Is(err, ErrSKUTaken):
		writeError(w, http.StatusConflict, "sku", err.Error())
	case errors.Is(err, domain.ErrInsufficientStock):
		writeError(w, http.StatusConflict, "delta", err.Error())
	case errors.Is(err, domain.ErrDiscontinued):
		writeError(w, http.StatusConflict, "", err.Error())
	case errors.Is(err, event.ErrConcurrencyConflict):
		writeError(w, http.StatusConflict, "", "the product changed concurrently too often; retry: "+err.Error())
	case errors.As(err, &nc):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, f.versionField, nc.Error())
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		w.WriteHeader(499)
	case errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "", "timed out; retry")
	default:
		h.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		writeError(w, http.StatusInternalServerError, "", "internal error; see the server log")
	}
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
