package projection

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/cqrskit/cqrskit/event"
)

// ResetFunc empties the read model inside tx, for Rebuild: truncate its
// tables, or create fresh ones.
type ResetFunc func(ctx context.Context, tx *sql.Tx) error

// Progress describes a running rebuild.
type Progress struct {
	// Done counts the events applied so far.
	Done int64
	// Total is the number of events to apply: those in the log when the
	// rebuild began, raised when more were applied. -1 when the store
	// cannot count (no Counter).
	Total int64
	// Rate is the average events per second so far.
	Rate float64
	// Elapsed is the time since the rebuild began.
	Elapsed time.Duration
}

// Rebuild builds the read model again from the start of the log: in one
// transaction it deletes the checkpoint and calls reset, then it applies
// every event in batches, calling progress (if not nil) once before the
// first batch and after each. It returns when it has caught up with the
// log; events committed later are left to Run. Use it to build a new
// projection over the whole history, or to rebuild one whose Apply changed.
//
// Steps of Run or CatchUp on the same Projection wait while it runs.
// Another process running the same projection meanwhile does not
// double-apply (the checkpoint is locked per batch) but shares the work,
// so Done then counts only this process's part.
func (p *Projection) Rebuild(ctx context.Context, reset ResetFunc, progress func(Progress)) error {
	p.mu.Lock()
	defer p.mu.Unlock()

	if err := p.reset(ctx, reset); err != nil {
		return err
	}
	total := int64(-1)
	if p.cfg.Counter != nil {
		n, err := p.cfg.Counter.CountEvents(ctx, event.Cursor{})
		if err != nil {
			p.cfg.Logger.WarnContext(ctx, "projection: cannot count events; rebuilding without a total",
				"projection", p.cfg.Name, "err", err)
		} else {
			total = n
		}
	}
	start := time.Now()
	var done int64
	report := func() {
		if progress == nil {
			return
		}
		pr := Progress{Done: done, Total: total, Elapsed: time.Since(start)}
		if total >= 0 {
			pr.Total = max(total, done)
		}
		if s := pr.Elapsed.Seconds(); s > 0 {
			pr.Rate = float64(done) / s
		}
		progress(pr)
	}
	report()
	for {
		n, more, err := p.stepLocked(ctx)
		done += int64(n)
		if n > 0 {
			report()
		}
		if err != nil {
			return fmt.Errorf("rebuild: %w", err)
		}
		if !more {
			p.cfg.Logger.InfoContext(ctx, "projection: rebuilt", "projection", p.cfg.Name,
				"events", done, "elapsed", time.Since(start).Round(time.Millisecond))
			return nil
		}
	}
}

// reset deletes the checkpoint and runs reset in one transaction.
func (p *Projection) reset(ctx context.Context, reset ResetFunc) error {
	cs := p.cfg.Checkpoints
	p.known = false
	tx, err := cs.DB().BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("projection %s: rebuild: begin: %w", p.cfg.Name, err)
	}
	defer tx.Rollback()
	if _, err := cs.Checkpoint(ctx, tx, p.cfg.Name); err != nil { // lock out other runners
		return fmt.Errorf("projection %s: rebuild: lock checkpoint: %w", p.cfg.Name, err)
	}
	if err := cs.DeleteCheckpoint(ctx, tx, p.cfg.Name); err != nil {
		return fmt.Errorf("projection %s: rebuild: delete checkpoint: %w", p.cfg.Name, err)
	}
	if reset != nil {
		if err := reset(ctx, tx); err != nil {
			return fmt.Errorf("projection %s: rebuild: reset read model: %w", p.cfg.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("projection %s: rebuild: commit reset: %w", p.cfg.Name, err)
	}
	p.cursor, p.known = event.Cursor{}, true
	return nil
}

// Status describes a projection.
type Status struct {
	// Name is the projection's name.
	Name string
	// Checkpoint is the cursor after the last applied event.
	Checkpoint event.Cursor
	// Lag counts the committed events not applied yet; -1 when the store
	// cannot count (no Counter).
	Lag int64
	// Running reports whether Run is running on this Projection value.
	Running bool
	// LastError is Run's most recent failure, nil after a success.
	LastError error
}

// Status reads the stored checkpoint and counts the events behind it. It
// waits for a batch being applied to commit.
func (p *Projection) Status(ctx context.Context) (Status, error) {
	st := Status{Name: p.cfg.Name, Lag: -1, Running: p.running.Load()}
	p.lastErrMu.Lock()
	st.LastError = p.lastErr
	p.lastErrMu.Unlock()
	c, err := p.readCheckpoint(ctx)
	if err != nil {
		return st, err
	}
	st.Checkpoint = c
	if p.cfg.Counter != nil {
		if st.Lag, err = p.cfg.Counter.CountEvents(ctx, c); err != nil {
			return st, fmt.Errorf("projection %s: count events behind: %w", p.cfg.Name, err)
		}
	}
	return st, nil
}
