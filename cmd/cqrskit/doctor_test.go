package main

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/cqrskit/cqrskit/store/postgres"
)

func findCheck(t *testing.T, r doctorReport, name string) checkResult {
	t.Helper()
	for _, c := range r.Checks {
		if c.Check == name {
			return c
		}
	}
	t.Fatalf("doctor has no %s check: %+v", name, r.Checks)
	return checkResult{}
}

// A session idle in a transaction while events wait behind it is a FAIL
// naming its backend; once it ends the check is OK.
func TestDoctorNamesTheBlockingBackend(t *testing.T) {
	t.Parallel()
	d := newDB(t, "postgres")
	db := d.store.DB()
	tx, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	var (
		pid int
		xid string
	)
	if err := tx.QueryRow(`SELECT pg_backend_pid(), pg_current_xact_id()::text`).Scan(&pid, &xid); err != nil {
		t.Fatal(err)
	}
	d.appendEvents(t, "product-1", 2)

	r := d.run(t, "doctor", "--max-horizon-age", "1ns").want(t, exitError)
	for _, want := range []string{"FAIL  read-horizon", "backend pid " + strconv.Itoa(pid), "idle in transaction", "2 committed events wait", "fix: end that transaction"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, r.stdout)
		}
	}
	r.oneLineError(t, "checks failed")

	var rep doctorReport
	d.run(t, "doctor", "--max-horizon-age", "1ns", "-o", "json").want(t, exitError).json(t, &rep)
	if c := findCheck(t, rep, "read-horizon"); c.Status != statusFail || !strings.Contains(c.Message, "pid "+strconv.Itoa(pid)) {
		t.Errorf("read-horizon check %+v: want FAIL naming pid %d", c, pid)
	}
	// The machine's server runs with max_prepared_transactions = 0 and no
	// idle timeout.
	if c := findCheck(t, rep, "prepared"); c.Status != statusOK {
		t.Errorf("prepared check %+v: want OK", c)
	}
	if c := findCheck(t, rep, "idle-timeout"); c.Status == statusFail || c.Status == statusWarn && !strings.Contains(c.Fix, "idle_in_transaction_session_timeout") {
		t.Errorf("idle-timeout check %+v", c)
	}

	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	d.run(t, "doctor", "-o", "json").want(t, exitOK).json(t, &rep)
	if c := findCheck(t, rep, "read-horizon"); c.Status != statusOK {
		t.Errorf("read-horizon after the rollback: %+v, want OK", c)
	}
	if c := findCheck(t, rep, "txids"); c.Status != statusOK {
		t.Errorf("txids: %+v, want OK", c)
	}
}

// After a restore from another cluster the doctor fails the txids check,
// migrate up refuses, and migrate rebase-txids repairs it.
func TestDoctorAndRebaseAfterRestore(t *testing.T) {
	t.Parallel()
	d := newDB(t, "postgres")
	d.appendEvents(t, "product-1", 3)
	pg := d.store.(*postgres.Store)
	if _, err := pg.DB().Exec(`UPDATE ` + pg.Table("events") + ` SET tx_id = (((tx_id::text)::bigint + 10000000000)::text)::xid8`); err != nil {
		t.Fatal(err)
	}
	if _, err := pg.DB().Exec(`UPDATE ` + pg.Table("streams") + ` SET last_tx_id = (((last_tx_id::text)::bigint + 10000000000)::text)::xid8`); err != nil {
		t.Fatal(err)
	}

	r := d.run(t, "doctor").want(t, exitError)
	if !strings.Contains(r.stdout, "FAIL  txids") || !strings.Contains(r.stdout, "cqrskit migrate rebase-txids") {
		t.Errorf("doctor after a restore:\n%s", r.stdout)
	}
	d.run(t, "migrate", "up").want(t, exitError).oneLineError(t, "restored from another cluster", "cqrskit migrate rebase-txids")

	r = d.run(t, "migrate", "rebase-txids").want(t, exitOK)
	if !strings.Contains(r.stdout, "renumbered 1 transactions (3 events, 1 streams, 0 checkpoints)") {
		t.Errorf("rebase-txids output:\n%s", r.stdout)
	}
	d.run(t, "migrate", "up").want(t, exitOK)
	var rep doctorReport
	d.run(t, "doctor", "-o", "json").want(t, exitOK).json(t, &rep)
	if c := findCheck(t, rep, "txids"); c.Status != statusOK {
		t.Errorf("txids after the rebase: %+v", c)
	}
	if r := d.run(t, "migrate", "rebase-txids").want(t, exitOK); !strings.Contains(r.stdout, "nothing to do") {
		t.Errorf("second rebase-txids:\n%s", r.stdout)
	}
	// The log reads again, from the start.
	if r := d.run(t, "events", "tail", "-n", "10").want(t, exitOK); strings.Count(r.stdout, "product-1@") != 3 {
		t.Errorf("events tail after the rebase:\n%s", r.stdout)
	}
}

func TestDoctorSQLiteAndUsage(t *testing.T) {
	t.Parallel()
	d := newDB(t, "sqlite")
	if r := d.run(t, "doctor").want(t, exitOK); !strings.Contains(r.stdout, "OK    database      SQLite") {
		t.Errorf("doctor on SQLite:\n%s", r.stdout)
	}
	if r := d.run(t, "doctor", "--max-horizon-age", "0s").want(t, exitUsage); !strings.Contains(r.stderr, "--max-horizon-age 0s: want a positive duration") {
		t.Errorf("doctor --max-horizon-age 0s:\n%s", r.stderr)
	}
	if r := d.run(t, "migrate", "rebase-txids").want(t, exitUsage); !strings.Contains(r.stderr, "PostgreSQL only") {
		t.Errorf("rebase-txids on SQLite:\n%s", r.stderr)
	}
}
