package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cqrskit/cqrskit/store"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/projection"
)

// checkpointStore resets projection checkpoints and counts the events a
// projection has still to apply (store.Admin lists them).
type checkpointStore interface {
	projection.CheckpointStore
	projection.Counter
}

// projectionJSON is a projection in projections status' JSON output.
type projectionJSON struct {
	Name   string `json:"name"`
	Cursor string `json:"cursor"`
	// Lag is how many events the projection has still to apply.
	Lag       int64     `json:"lag"`
	UpdatedAt time.Time `json:"updated_at"`
}

// projectionsStatus is the JSON output of projections status.
type projectionsStatus struct {
	Head        string           `json:"head"`
	Projections []projectionJSON `json:"projections"`
}

// rebuildResult is the JSON output of projections rebuild.
type rebuildResult struct {
	Name    string  `json:"name"`
	Events  int64   `json:"events"`
	Seconds float64 `json:"seconds"`
	Cursor  string  `json:"cursor"`
}

func (a *app) projectionsCommand() *cobra.Command {
	status := &cobra.Command{
		Use:   "status",
		Short: "List projections' checkpoints and how far behind the log they are",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withBackend(cmd.Context(), needTables, func(b backend) error {
				return a.projectionsStatus(cmd.Context(), b)
			})
		},
	}
	var (
		noWait   bool
		timeout  time.Duration
		poll     time.Duration
		resetSQL string
		noReset  bool
	)
	rebuild := &cobra.Command{
		Use:   "rebuild NAME (--reset-sql SQL | --no-reset)",
		Short: "Have the running service rebuild a projection from the start of the log, showing progress",
		Long: `Set the projection's checkpoint back to the start of the log, so that the
service running the projection (projection.Projection.Run) applies the log
again from its next batch on, then follow its checkpoint against the head of the log until it has caught
up: a progress bar (done/total, rate, ETA) on a terminal, plain lines
otherwise.

The CLI cannot run projection code, and does not know the read model:
  --reset-sql SQL  empties the read model, for example
                   "DELETE FROM product_list", in the same transaction that
                   deletes the checkpoint (what projection.Rebuild's
                   ResetFunc does in the service);
  --no-reset       keeps it: only right when the projection's Apply can
                   apply an event again over its own earlier result (upserts
                   of whole rows), else the rebuilt read model counts events
                   twice.
One of them is required. The reset locks the checkpoint first, so a batch
the service is applying commits before it, and the next one starts over.

A service running the projection does the rebuild. A running projection
notices the reset at its next batch, which an idle one makes when the next
event commits; one that is not running starts over when it starts. Ctrl-C or --timeout stop the waiting, not the rebuild
(exit 1).`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			switch {
			case (resetSQL == "") == !noReset:
				return usagef("rebuild needs --reset-sql SQL (to empty the read model) or --no-reset (Apply is safe to repeat), not both")
			case poll <= 0:
				return usagef("--poll %s: must be positive", poll)
			case timeout < 0:
				return usagef("--timeout %s: must not be negative", timeout)
			}
			return a.withBackend(cmd.Context(), needTables, func(b backend) error {
				return a.rebuildProjection(cmd.Context(), b, argv[0], resetSQL, !noWait, timeout, poll)
			})
		},
	}
	f := rebuild.Flags()
	f.StringVar(&resetSQL, "reset-sql", "", "SQL that empties the read model, run with the checkpoint reset")
	f.BoolVar(&noReset, "no-reset", false, "keep the read model: the projection's Apply is safe to repeat")
	f.BoolVar(&noWait, "no-wait", false, "reset and return without following the rebuild")
	f.DurationVar(&timeout, "timeout", 0, "stop waiting after this long (0: until caught up)")
	f.DurationVar(&poll, "poll", 500*time.Millisecond, "how often to read the checkpoint")
	return group("projections", "Inspect and rebuild projections", status, rebuild)
}

func (a *app) projectionsStatus(ctx context.Context, b backend) error {
	head, err := b.Head(ctx)
	if err != nil {
		return err
	}
	cps, err := b.ListCheckpoints(ctx)
	if err != nil {
		return err
	}
	st := projectionsStatus{Head: formatCursor(head), Projections: []projectionJSON{}}
	for _, c := range cps {
		lag, err := b.CountEvents(ctx, c.Cursor)
		if err != nil {
			return err
		}
		st.Projections = append(st.Projections, projectionJSON{Name: c.Name, Cursor: formatCursor(c.Cursor), Lag: lag, UpdatedAt: c.UpdatedAt})
	}
	if a.json() {
		return writeJSON(a.stdout, st)
	}
	tw := newTable(a.stdout)
	row(tw, "PROJECTION", "CURSOR", "LAG", "UPDATED")
	for _, p := range st.Projections {
		row(tw, p.Name, p.Cursor, p.Lag, formatTime(p.UpdatedAt))
	}
	tw.Flush()
	fmt.Fprintf(a.stdout, "head of the log: %s\n", st.Head)
	return nil
}

// stallHint is how long a rebuild may show no progress before the CLI
// asks whether a service runs the projection.
const stallHint = 10 * time.Second

// rebuildProjection resets name's checkpoint and, with wait, follows the
// rebuild until the checkpoint reaches the head the log had at the reset.
func (a *app) rebuildProjection(ctx context.Context, b backend, name, resetSQL string, wait bool, timeout, poll time.Duration) error {
	cps, err := b.ListCheckpoints(ctx)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(cps, func(c store.CheckpointInfo) bool { return c.Name == name }) {
		names := make([]string, len(cps))
		for i, c := range cps {
			names[i] = c.Name
		}
		return fmt.Errorf("no projection %q in %s (known: %s)", name, b, cmp.Or(strings.Join(names, ", "), "none"))
	}
	// The target: every event up to the head at the reset.
	head, err := b.Head(ctx)
	if err != nil {
		return err
	}
	total, err := countUpTo(ctx, b, event.Cursor{}, head)
	if err != nil {
		return err
	}
	if err := resetProjection(ctx, b, name, resetSQL); err != nil {
		return err
	}
	if !wait {
		fmt.Fprintf(a.stdout, "projection %s: reset; the service running it applies the log again (%d events)\n", name, total)
		return nil
	}
	fmt.Fprintf(a.stderr, "projection %s: reset; waiting for the service running it to apply %d events (Ctrl-C stops waiting, not the rebuild)\n", name, total)
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := time.Now()
	pr := newProgress(a.stderr, "rebuild "+name, total)
	var (
		cur      event.Cursor
		lastMove = start
		hinted   bool
		werr     error
	)
	for {
		c, err := readCheckpoint(ctx, b, name)
		if err == nil {
			var left int64
			if left, err = countUpTo(ctx, b, c, head); err == nil {
				pr.update(total-left, total)
			}
		}
		if err != nil {
			werr = err
			break
		}
		if c != cur {
			cur, lastMove = c, time.Now()
		}
		if !cur.Less(head) {
			break
		}
		if !hinted && time.Since(lastMove) > stallHint {
			hinted = true
			fmt.Fprintf(a.stderr, "projection %s: no progress for %s: is a service running it? (an idle one notices the reset when the next event commits)\n", name, stallHint)
		}
		select {
		case <-time.After(poll):
			continue
		case <-ctx.Done():
			werr = ctx.Err()
		}
		break
	}
	pr.finish()
	if werr != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("stopped waiting for projection %s at %s of %s (%v); the rebuild goes on in the service", name, formatCursor(cur), formatCursor(head), werr)
		}
		return werr
	}
	elapsed := time.Since(start)
	if a.json() {
		return writeJSON(a.stdout, rebuildResult{Name: name, Events: total, Seconds: elapsed.Seconds(), Cursor: formatCursor(cur)})
	}
	fmt.Fprintf(a.stdout, "projection %s rebuilt: %d events in %s, checkpoint %s\n", name, total, formatAge(elapsed), formatCursor(cur))
	return nil
}

// countUpTo counts the events after from up to and including to.
func countUpTo(ctx context.Context, b backend, from, to event.Cursor) (int64, error) {
	after, err := b.CountEvents(ctx, from)
	if err != nil {
		return 0, err
	}
	beyond, err := b.CountEvents(ctx, to)
	if err != nil {
		return 0, err
	}
	return max(after-beyond, 0), nil
}

// resetProjection sets name's checkpoint back to the start of the log,
// after running resetSQL if given, in one transaction, as projection.Rebuild
// does in a service. It locks the checkpoint first, so a batch being
// applied commits before. The checkpoint is saved as zero rather than
// deleted: the service reads zero either way, and projections status keeps
// showing it, with its lag.
func resetProjection(ctx context.Context, cs projection.CheckpointStore, name, resetSQL string) error {
	tx, err := cs.DB().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := cs.Checkpoint(ctx, tx, name); err != nil {
		return err
	}
	if resetSQL != "" {
		if _, err := tx.ExecContext(ctx, resetSQL); err != nil {
			return fmt.Errorf("reset the read model of projection %s (nothing was changed): --reset-sql: %w", name, err)
		}
	}
	if err := cs.SaveCheckpoint(ctx, tx, name, event.Cursor{}); err != nil {
		return err
	}
	return tx.Commit()
}

// readCheckpoint reads name's cursor without creating or locking it: the
// zero cursor when the service has not saved one since the reset.
func readCheckpoint(ctx context.Context, b backend, name string) (event.Cursor, error) {
	cps, err := b.ListCheckpoints(ctx)
	if err != nil {
		return event.Cursor{}, err
	}
	for _, c := range cps {
		if c.Name == name {
			return c.Cursor, nil
		}
	}
	return event.Cursor{}, nil
}
