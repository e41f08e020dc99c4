package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/projection"
)

// runCounter runs, as a service would, a projection named "counter" that
// counts events in the read model table read_count, and returns a function
// reading the count.
func runCounter(t *testing.T, d *db) func() int64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sdb := d.store.DB()
	for _, q := range []string{`CREATE TABLE read_count (n bigint NOT NULL)`, `INSERT INTO read_count VALUES (0)`} {
		if _, err := sdb.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	p, err := projection.New(projection.Config{
		Name:         "counter",
		Events:       d.store,
		Checkpoints:  d.store,
		BatchSize:    100,
		PollInterval: 20 * time.Millisecond,
		Logger:       slog.New(slog.DiscardHandler),
		Apply: func(ctx context.Context, tx *sql.Tx, _ event.Event) error {
			_, err := tx.ExecContext(ctx, `UPDATE read_count SET n = n + 1`)
			return err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() int64 {
		var n int64
		if err := sdb.QueryRow(`SELECT n FROM read_count`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// statusOf returns the projection's row in projections status.
func statusOf(t *testing.T, d *db, name string) (projectionJSON, string) {
	t.Helper()
	var st projectionsStatus
	d.run(t, "projections", "status", "-o", "json").want(t, exitOK).json(t, &st)
	for _, p := range st.Projections {
		if p.Name == name {
			return p, st.Head
		}
	}
	t.Fatalf("projections status lacks %s: %+v", name, st)
	return projectionJSON{}, ""
}

func TestProjections(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		d := newDB(t, kind)
		const total = 250
		for i := range 5 {
			d.appendEvents(t, fmt.Sprintf("product-%d", i), total/5)
		}
		count := runCounter(t, d)
		deadline := time.Now().Add(20 * time.Second)
		for count() < total && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := count(); n != total {
			t.Fatalf("the projection applied %d events, want %d", n, total)
		}
		st, head := statusOf(t, d, "counter")
		if st.Lag != 0 || st.Cursor != head || st.UpdatedAt.IsZero() {
			t.Errorf("status after catching up: %+v, head %s", st, head)
		}
		if r := d.run(t, "projections", "status").want(t, exitOK); !strings.Contains(r.stdout, "counter") || !strings.Contains(r.stdout, "head of the log: "+head) {
			t.Errorf("status text:\n%s", r.stdout)
		}

		// Rebuild: the read model is emptied with the checkpoint, and the
		// running projection applies everything again, once. It notices
		// the reset at its next batch: live traffic brings one.
		rebuild := startCLI(t, d.flag, "projections", "rebuild", "counter", "--reset-sql", "UPDATE read_count SET n = 0", "--poll", "20ms", "--timeout", "30s", "-o", "json")
		rebuild.waitFor(t, &rebuild.stderr, "projection counter: reset;")
		d.appendEvents(t, "product-live", 1)
		r := rebuild.wait(t).want(t, exitOK)
		var res rebuildResult
		r.json(t, &res)
		if res.Name != "counter" || res.Events != total || res.Cursor == "" || res.Cursor == "0" {
			t.Errorf("rebuild result %+v, want %d events", res, total)
		}
		if !strings.Contains(r.stderr, fmt.Sprintf("rebuild counter: %d/%d events (100.0%%)", total, total)) {
			t.Errorf("no final progress line (stderr is not a terminal):\n%s", r.stderr)
		}
		deadline = time.Now().Add(20 * time.Second)
		for count() < total+1 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := count(); n != total+1 {
			t.Errorf("after the rebuild the read model counts %d events, want %d", n, total+1)
		}
		st, head = statusOf(t, d, "counter")

		// Bad reset SQL changes nothing.
		d.run(t, "projections", "rebuild", "counter", "--reset-sql", "UPDATE no_such_table SET n = 0").want(t, exitError).oneLineError(t, "--reset-sql", "nothing was changed")
		if st, _ := statusOf(t, d, "counter"); st.Cursor != head {
			t.Errorf("a failed reset moved the checkpoint to %s", st.Cursor)
		}

		d.run(t, "projections", "rebuild", "counter").want(t, exitUsage)
		d.run(t, "projections", "rebuild", "nope", "--no-reset").want(t, exitError).oneLineError(t, `no projection "nope"`, "known: counter")
	})
}

func TestProjectionRebuildWithoutService(t *testing.T) {
	t.Parallel()
	d := newDB(t, "sqlite")
	evs := d.appendEvents(t, "product-1", 3)
	tx, err := d.store.DB().Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.store.SaveCheckpoint(context.Background(), tx, "idle", evs[2].Cursor()); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if st, _ := statusOf(t, d, "idle"); st.Lag != 0 {
		t.Fatalf("status: %+v", st)
	}

	r := d.run(t, "projections", "rebuild", "idle", "--no-reset", "--no-wait").want(t, exitOK)
	if !strings.Contains(r.stdout, "projection idle: reset") {
		t.Errorf("--no-wait output:\n%s", r.stdout)
	}
	// Nothing runs it: waiting ends at the timeout, with a clear error.
	r = d.run(t, "projections", "rebuild", "idle", "--no-reset", "--timeout", "300ms", "--poll", "50ms").
		want(t, exitError)
	if !strings.Contains(r.stderr, "rebuild idle: 0/3 events (0.0%)") {
		t.Errorf("no progress line:\n%s", r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "cqrskit: stopped waiting for projection idle at 0 of 3") ||
		!strings.HasSuffix(last, "the rebuild goes on in the service") {
		t.Errorf("last line of stderr: %q", last)
	}
	if st, _ := statusOf(t, d, "idle"); st.Lag != 3 || st.Cursor != "0" {
		t.Errorf("status after the reset: %+v", st)
	}
}
