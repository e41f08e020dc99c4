package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/messagebus"
)

// transientSetup is a store with a one-row read model and a handler whose
// policy would dead-letter after two failed tries.
type transientSetup struct {
	s      *Store
	policy handler.RetryPolicy
	e      event.Event
}

func newTransientSetup(t *testing.T) transientSetup {
	t.Helper()
	s := newStore(t, Config{})
	if _, err := s.DB().ExecContext(context.Background(), `
		CREATE TABLE rm (id TEXT PRIMARY KEY, applied BIGINT NOT NULL, touched BIGINT NOT NULL);
		INSERT INTO rm VALUES ('x', 0, 0);
		CREATE TABLE locks (k TEXT PRIMARY KEY, v BIGINT NOT NULL);
		INSERT INTO locks VALUES ('a', 0), ('b', 0);`); err != nil {
		t.Fatal(err)
	}
	e := event.Event{ID: event.NewID(), StreamID: "s-1", StreamType: "test", Version: 1, Position: 1,
		Type: "test.added", SchemaVersion: 1, Data: []byte(`{}`), RecordedAt: time.Now().UTC()}
	return transientSetup{s: s, e: e,
		policy: handler.RetryPolicy{InitialDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, MaxAttempts: 2, InProcess: 2}}
}

func (ts transientSetup) applied(t *testing.T) int {
	t.Helper()
	var n int
	if err := ts.s.DB().QueryRow(`SELECT applied FROM rm WHERE id = 'x'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func apply(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `UPDATE rm SET applied = applied + 1 WHERE id = 'x'`)
	return err
}

// handleUntilAcked delivers e again while Handle asks for a redelivery, as
// a broker would, and returns how many deliveries it took.
func handleUntilAcked(t *testing.T, h *handler.Handler, e event.Event) int {
	t.Helper()
	ctx := context.Background()
	for attempt := 1; attempt <= 50; attempt++ {
		err := h.Handle(ctx, messagebus.Delivery{Message: envelope.Message(e, "test"), Attempt: attempt})
		if err == nil {
			return attempt
		}
		if _, ok := messagebus.RetryDelay(err); !ok {
			t.Fatalf("delivery %d: %v; want nil or a retry delay", attempt, err)
		}
	}
	t.Fatal("not acknowledged after 50 deliveries")
	return 0
}

func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func newTransientHandler(t *testing.T, ts transientSetup, name string, fn handler.Func) *handler.Handler {
	t.Helper()
	h, err := handler.Idempotent(handler.Config{
		Name: name, Store: ts.s, RetryPolicy: ts.policy, Sleep: noSleep, Logger: slog.New(slog.DiscardHandler), Func: fn,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// checkOnceNoDeadLetter: the event took effect once and nothing was
// dead-lettered.
func checkOnceNoDeadLetter(t *testing.T, ts transientSetup, h *handler.Handler) {
	t.Helper()
	if got := ts.applied(t); got != 1 {
		t.Errorf("read model applied %d times, want 1", got)
	}
	for dl, err := range h.DeadLetters().All(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		t.Errorf("dead letter %+v; want none: the failures were the database's", dl)
	}
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// The handler's transaction meets a real serialization failure (SQLSTATE
// 40001, REPEATABLE READ and a concurrent update) more often than
// MaxAttempts allows, then succeeds.
func TestHandlerSerializationFailureIsTransient(t *testing.T) {
	t.Parallel()
	ts := newTransientSetup(t)
	db := ts.s.DB()
	var name string
	if err := db.QueryRow(`SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`ALTER DATABASE ` + pgx.Identifier{name}.Sanitize() +
		` SET default_transaction_isolation = 'repeatable read'`); err != nil {
		t.Fatal(err)
	}
	db.SetMaxIdleConns(0) // new connections take the setting
	db.SetMaxIdleConns(2)

	const failures = 5 // > MaxAttempts (2)
	var calls int
	h := newTransientHandler(t, ts, "serialization", func(ctx context.Context, tx *sql.Tx, e event.Event) error {
		calls++
		if calls > failures {
			return apply(ctx, tx)
		}
		var n int // takes the snapshot, if the mark did not
		if err := tx.QueryRowContext(ctx, `SELECT applied FROM rm WHERE id = 'x'`).Scan(&n); err != nil {
			return err
		}
		if _, err := db.ExecContext(ctx, `UPDATE rm SET touched = touched + 1 WHERE id = 'x'`); err != nil {
			return fmt.Errorf("concurrent update: %v", err) // not wrapped: a test failure, not transient
		}
		err := apply(ctx, tx)
		if code := sqlState(err); code != "40001" {
			t.Errorf("try %d: %v (SQLSTATE %q); want a serialization failure", calls, err, code)
		}
		return fmt.Errorf("apply: %w", err)
	})
	handleUntilAcked(t, h, ts.e)
	if calls != failures+1 {
		t.Errorf("handler ran %d times, want %d", calls, failures+1)
	}
	checkOnceNoDeadLetter(t, ts, h)
}

// The handler's transaction is chosen as a deadlock's victim (SQLSTATE
// 40P01) by a concurrent transaction, more often than MaxAttempts allows.
func TestHandlerDeadlockIsTransient(t *testing.T) {
	t.Parallel()
	ts := newTransientSetup(t)
	db := ts.s.DB()
	const failures = 4
	var calls int
	h := newTransientHandler(t, ts, "deadlock", func(ctx context.Context, tx *sql.Tx, e event.Event) error {
		calls++
		if calls > failures {
			return apply(ctx, tx)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE locks SET v = v + 1 WHERE k = 'a'`); err != nil {
			return err
		}
		// The other transaction locks b, then waits for a.
		pid := make(chan int, 1)
		done := make(chan error, 1)
		go func() { done <- lockBThenA(ctx, db, pid) }()
		other := <-pid
		if other == 0 {
			return fmt.Errorf("other transaction: %v", <-done)
		}
		for waiting := false; !waiting; {
			if err := db.QueryRowContext(ctx, `SELECT coalesce(wait_event_type = 'Lock', false)
				FROM pg_stat_activity WHERE pid = $1`, other).Scan(&waiting); err != nil {
				return fmt.Errorf("watch other transaction: %v", err)
			}
		}
		// This one now waits for b: a deadlock, detected here first.
		if _, err := tx.ExecContext(ctx, `SET LOCAL deadlock_timeout = '20ms'`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE locks SET v = v + 1 WHERE k = 'b'`)
		if code := sqlState(err); code != "40P01" {
			t.Errorf("try %d: %v (SQLSTATE %q); want a deadlock", calls, err, code)
		}
		_ = tx.Rollback() // lets the other transaction finish before the next try
		if oerr := <-done; oerr != nil {
			t.Errorf("other transaction: %v", oerr)
		}
		return fmt.Errorf("lock b: %w", err)
	})
	handleUntilAcked(t, h, ts.e)
	if calls != failures+1 {
		t.Errorf("handler ran %d times, want %d", calls, failures+1)
	}
	checkOnceNoDeadLetter(t, ts, h)
}

// lockBThenA locks b, sends its backend's pid, then locks a and commits.
// It sends 0 if it fails before.
func lockBThenA(ctx context.Context, db *sql.DB, pid chan<- int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		pid <- 0
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var p int
	if err := tx.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&p); err != nil {
		pid <- 0
		return err
	}
	for _, q := range []string{`SET LOCAL deadlock_timeout = '1min'`, `UPDATE locks SET v = v + 1 WHERE k = 'b'`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			pid <- 0
			return err
		}
	}
	pid <- p
	if _, err := tx.ExecContext(ctx, `UPDATE locks SET v = v + 1 WHERE k = 'a'`); err != nil {
		return err
	}
	return tx.Commit()
}

// The handler's connection is terminated (pg_terminate_backend) in the
// middle of its transaction, more often than MaxAttempts allows.
func TestHandlerKilledConnectionIsTransient(t *testing.T) {
	t.Parallel()
	ts := newTransientSetup(t)
	db := ts.s.DB()
	const failures = 4
	var calls int
	var seen []error
	h := newTransientHandler(t, ts, "killed", func(ctx context.Context, tx *sql.Tx, e event.Event) error {
		calls++
		if calls > failures {
			return apply(ctx, tx)
		}
		var pid int
		if err := tx.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			return err
		}
		var ok bool
		if err := db.QueryRowContext(ctx, `SELECT pg_terminate_backend($1, 10000)`, pid).Scan(&ok); err != nil || !ok {
			return fmt.Errorf("terminate backend %d: %v, %v", pid, ok, err)
		}
		err := apply(ctx, tx)
		if err == nil {
			t.Errorf("try %d: the write succeeded on a terminated connection", calls)
		}
		seen = append(seen, err)
		return fmt.Errorf("apply: %w", err)
	})
	handleUntilAcked(t, h, ts.e)
	if calls != failures+1 {
		t.Errorf("handler ran %d times, want %d", calls, failures+1)
	}
	checkOnceNoDeadLetter(t, ts, h)
	t.Logf("errors on the terminated connection: %v", seen)
}

// Transient failures do not count, but the handler's own errors still
// dead-letter after exactly MaxAttempts of them.
func TestHandlerLogicErrorAfterTransientDeadLetters(t *testing.T) {
	t.Parallel()
	ts := newTransientSetup(t)
	var calls, logic int
	h := newTransientHandler(t, ts, "logic", func(ctx context.Context, tx *sql.Tx, e event.Event) error {
		calls++
		if calls <= 3 { // a lock timeout: the database's fault
			_, err := tx.ExecContext(ctx, `DO $$ BEGIN RAISE EXCEPTION 'lock timeout' USING ERRCODE = '55P03'; END $$`)
			return err
		}
		logic++
		return errors.New("the handler's own bug")
	})
	handleUntilAcked(t, h, ts.e)
	if logic != ts.policy.MaxAttempts {
		t.Errorf("the failing handler ran %d times after the transient failures, want MaxAttempts = %d", logic, ts.policy.MaxAttempts)
	}
	var dls []handler.DeadLetter
	for dl, err := range h.DeadLetters().All(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		dls = append(dls, dl)
	}
	if len(dls) != 1 || dls[0].Attempts != ts.policy.MaxAttempts || dls[0].Error != "the handler's own bug" {
		t.Errorf("dead letters %+v; want one after %d attempts with the handler's error", dls, ts.policy.MaxAttempts)
	}
}

func TestIsTransient(t *testing.T) {
	s := &Store{}
	tests := []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "40001"}, true},
		{&pgconn.PgError{Code: "40P01"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: "57P01"}, true},
		{&pgconn.PgError{Code: "53300"}, true},
		{fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "40001"}), true},
		{pgconn.ErrConnClosed, true},
		{io.ErrUnexpectedEOF, true},
		{&pgconn.PgError{Code: "40002"}, false},
		{&pgconn.PgError{Code: "23505"}, false},
		{&pgconn.PgError{Code: "42P01"}, false},
		{&pgconn.PgError{Code: ""}, false},
		{errors.New("boom"), false},
		{nil, false},
	}
	for _, tc := range tests {
		if got := s.IsTransient(tc.err); got != tc.want {
			t.Errorf("IsTransient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
