package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/cqrskit/cqrskit/store/postgres"
)

// Statuses of a doctor check.
const (
	statusOK   = "OK"
	statusWarn = "WARN"
	statusFail = "FAIL"
)

// checkResult is one doctor check, as printed.
type checkResult struct {
	Check   string `json:"check"`
	Status  string `json:"status"`
	Message string `json:"message"`
	// Fix says what to do; empty when OK.
	Fix string `json:"fix,omitempty"`
}

// doctorReport is the JSON output of doctor.
type doctorReport struct {
	Database string        `json:"database"`
	Checks   []checkResult `json:"checks"`
}

func (a *app) doctorCommand() *cobra.Command {
	var maxAge time.Duration
	c := &cobra.Command{
		Use:   "doctor",
		Short: "Check the database for what silently stalls or misorders readers",
		Long: `Check the PostgreSQL settings and state that stall or misorder cqrskit's
catch-up readers without an error, and print each check as OK, WARN or FAIL
with what to do:

  read-horizon   a transaction holding the gap-safe read horizon longer than
                 --max-horizon-age: FAIL when committed events wait behind it
  txids          stored transaction ids ahead of the cluster's counter (a
                 restore into another cluster): FAIL
  idle-timeout   idle_in_transaction_session_timeout unset: WARN
  prepared       prepared transactions older than --max-horizon-age: FAIL

Exit code 1 when a check fails. On SQLite there is nothing to check.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.doctor(cmd.Context(), maxAge) },
	}
	c.Flags().DurationVar(&maxAge, "max-horizon-age", postgres.DefaultHorizonWarnAfter, "how long a transaction may hold the read horizon before it is reported")
	return c
}

func (a *app) doctor(ctx context.Context, maxAge time.Duration) error {
	if maxAge <= 0 {
		return usagef("--max-horizon-age %s: want a positive duration", maxAge)
	}
	return a.withBackend(ctx, needTables, func(b backend) error {
		r := doctorReport{Database: b.String()}
		if pg, ok := postgresStore(b); ok {
			r.Checks = pgDoctor{pg}.doctor(ctx, maxAge)
		} else {
			r.Checks = []checkResult{{Check: "database", Status: statusOK, Message: "SQLite: no server, no transaction ids; nothing to check"}}
		}
		failed := 0
		for _, c := range r.Checks {
			if c.Status == statusFail {
				failed++
			}
		}
		if a.json() {
			if err := writeJSON(a.stdout, r); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(a.stdout, "%s\n", r.Database)
			for _, c := range r.Checks {
				fmt.Fprintf(a.stdout, "%-4s  %-12s  %s\n", c.Status, c.Check, c.Message)
				if c.Fix != "" {
					fmt.Fprintf(a.stdout, "      %-12s  fix: %s\n", "", c.Fix)
				}
			}
		}
		if failed > 0 {
			return fmt.Errorf("doctor: %d of %d checks failed", failed, len(r.Checks))
		}
		return nil
	})
}

// pgDoctor runs the checks of a PostgreSQL store.
type pgDoctor struct{ *postgres.Store }

// doctor runs the PostgreSQL checks. A check that cannot run is a FAIL
// saying why.
func (b pgDoctor) doctor(ctx context.Context, maxAge time.Duration) []checkResult {
	return []checkResult{
		b.checkHorizon(ctx, maxAge),
		b.checkTxIDs(ctx),
		b.checkIdleTimeout(ctx),
		b.checkPrepared(ctx, maxAge),
	}
}

func (b pgDoctor) checkHorizon(ctx context.Context, maxAge time.Duration) checkResult {
	r := checkResult{Check: "read-horizon"}
	h, err := b.ReadHorizon(ctx)
	if err != nil {
		r.Status, r.Message = statusFail, "cannot read the horizon: "+oneLine(err)
		return r
	}
	if len(h.Blockers) == 0 || h.Age < maxAge {
		r.Status = statusOK
		r.Message = "no transaction holds catch-up readers back"
		if len(h.Blockers) > 0 {
			r.Message = fmt.Sprintf("the oldest transaction holding the horizon is %s old (below %s)", formatAge(h.Age), maxAge)
		}
		return r
	}
	old := 0
	for _, bl := range h.Blockers {
		if bl.Age >= maxAge {
			old++
		}
	}
	r.Status = statusWarn
	waiting := "no committed event waits behind it yet, but every new one will"
	if h.Waiting > 0 {
		r.Status = statusFail
		waiting = fmt.Sprintf("%d committed events wait unread behind it", h.Waiting)
		if h.Waiting >= 10_000 {
			waiting = "10,000 or more committed events wait unread behind it"
		}
	}
	r.Message = fmt.Sprintf("catch-up readers are held at transaction %d by %s; %s", h.Horizon, h.Blockers[0], waiting)
	if old > 1 {
		r.Message += fmt.Sprintf(" (%d transactions older than %s hold it)", old, maxAge)
	}
	r.Fix = "end that transaction (commit or roll back the session, or pg_terminate_backend), then set idle_in_transaction_session_timeout so PostgreSQL ends such sessions"
	return r
}

func (b pgDoctor) checkTxIDs(ctx context.Context) checkResult {
	r := checkResult{Check: "txids"}
	err := b.CheckTxIDs(ctx)
	var ahead *postgres.TxIDsAheadError
	switch {
	case err == nil:
		r.Status, r.Message = statusOK, "stored transaction ids are below the cluster's counter"
	case errors.As(err, &ahead):
		r.Status = statusFail
		r.Message = fmt.Sprintf("%s holds transaction id %d, but the cluster's next is %d: restored from another cluster; new events would be skipped by readers", ahead.Table, ahead.MaxStored, ahead.Next)
		r.Fix = "stop writers and readers, then run `cqrskit migrate rebase-txids` (add --advance if it asks)"
	default:
		r.Status, r.Message = statusFail, "cannot check: "+oneLine(err)
	}
	return r
}

func (b pgDoctor) checkIdleTimeout(ctx context.Context) checkResult {
	r := checkResult{Check: "idle-timeout"}
	var v string
	if err := b.DB().QueryRowContext(ctx, `SELECT setting FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout'`).Scan(&v); err != nil {
		r.Status, r.Message = statusFail, "cannot read idle_in_transaction_session_timeout: "+oneLine(err)
		return r
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		r.Status, r.Message = statusFail, fmt.Sprintf("idle_in_transaction_session_timeout %q: not a number of milliseconds", v)
		return r
	}
	if ms > 0 {
		r.Status = statusOK
		r.Message = fmt.Sprintf("idle_in_transaction_session_timeout is %s for this role and database", time.Duration(ms)*time.Millisecond)
		return r
	}
	r.Status = statusWarn
	r.Message = "idle_in_transaction_session_timeout is 0 (off) for this role and database: a session left idle in a transaction stalls every catch-up reader until someone notices"
	r.Fix = "ALTER DATABASE <db> SET idle_in_transaction_session_timeout = '60s' (or ALTER ROLE for the application's role), above the service's longest transaction"
	return r
}

func (b pgDoctor) checkPrepared(ctx context.Context, maxAge time.Duration) checkResult {
	r := checkResult{Check: "prepared"}
	var maxPrepared int
	if err := b.DB().QueryRowContext(ctx, `SELECT current_setting('max_prepared_transactions')::int`).Scan(&maxPrepared); err != nil {
		r.Status, r.Message = statusFail, "cannot read max_prepared_transactions: "+oneLine(err)
		return r
	}
	if maxPrepared == 0 {
		r.Status, r.Message = statusOK, "max_prepared_transactions is 0: no prepared transaction can hold readers"
		return r
	}
	rows, err := b.DB().QueryContext(ctx, `SELECT gid, database::text, owner::text, prepared FROM pg_prepared_xacts
		WHERE prepared < now() - make_interval(secs => $1) ORDER BY prepared`, maxAge.Seconds())
	if err != nil {
		r.Status, r.Message = statusFail, "cannot list prepared transactions: "+oneLine(err)
		return r
	}
	defer rows.Close()
	var stale []string
	for rows.Next() {
		var gid, database, owner string
		var at time.Time
		if err := rows.Scan(&gid, &database, &owner, &at); err != nil {
			r.Status, r.Message = statusFail, "cannot list prepared transactions: "+oneLine(err)
			return r
		}
		stale = append(stale, fmt.Sprintf("%q (database %s, owner %s, prepared %s)", gid, database, owner, formatTime(at)))
	}
	if err := rows.Err(); err != nil {
		r.Status, r.Message = statusFail, "cannot list prepared transactions: "+oneLine(err)
		return r
	}
	if len(stale) == 0 {
		r.Status, r.Message = statusOK, fmt.Sprintf("max_prepared_transactions is %d; no prepared transaction is older than %s", maxPrepared, maxAge)
		return r
	}
	r.Status = statusFail
	r.Message = fmt.Sprintf("%d prepared transactions older than %s hold every reader on the server: %v", len(stale), maxAge, stale)
	r.Fix = "COMMIT PREPARED or ROLLBACK PREPARED each (its transaction manager should), and keep max_prepared_transactions at 0 unless one is needed"
	return r
}

// rebaseCommand is `migrate rebase-txids`.
func (a *app) rebaseCommand() *cobra.Command {
	var advance bool
	c := &cobra.Command{
		Use:   "rebase-txids",
		Short: "Renumber stored transaction ids after a restore into another PostgreSQL cluster",
		Long: `Renumber the transaction ids stored with the events (and the streams' and
checkpoints' copies) below this cluster's counter, keeping their order, after
a pg_dump/pg_restore into another cluster made them higher than the ids new
transactions get. Migrate refuses to start until this is done. Stop every
writer and reader first: the tables are locked against writes, and a
reader's in-memory position from before is void (checkpoints are rebased).

With more distinct stored ids than the counter has below it, --advance first
consumes transaction ids (about 50,000 a second); pg_resetwal -x on a stopped
server is the faster way. Does nothing when the ids are fine.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.rebaseTxIDs(cmd.Context(), advance) },
	}
	c.Flags().BoolVar(&advance, "advance", false, "consume transaction ids first when the counter is too low")
	return c
}

func (a *app) rebaseTxIDs(ctx context.Context, advance bool) error {
	t, err := a.target()
	if err != nil {
		return err
	}
	if t.kind != kindPostgres {
		return usagef("rebase-txids applies to PostgreSQL only; SQLite stores no transaction ids")
	}
	return a.withBackend(ctx, needTables, func(b backend) error {
		pg, ok := postgresStore(b)
		if !ok {
			return fmt.Errorf("rebase-txids: %s is not a PostgreSQL store", b)
		}
		res, err := pg.RebaseTxIDs(ctx, postgres.RebaseOptions{Advance: advance})
		if err != nil {
			return err
		}
		if a.json() {
			return writeJSON(a.stdout, res)
		}
		if !res.Rebased {
			fmt.Fprintf(a.stdout, "%s: stored transaction ids are below the cluster's counter; nothing to do\n", b)
			return nil
		}
		if res.Advanced > 0 {
			fmt.Fprintf(a.stdout, "advanced the transaction counter by %d\n", res.Advanced)
		}
		fmt.Fprintf(a.stdout, "renumbered %d transactions (%d events, %d streams, %d checkpoints): highest id %d -> %d\n",
			res.Transactions, res.Events, res.Streams, res.Checkpoints, res.From, res.To)
		return nil
	})
}
