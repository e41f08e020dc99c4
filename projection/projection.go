package projection

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/internal/runloop"
)

// Func applies one event to the read model inside tx. The projection
// commits tx with its checkpoint; Func must not commit or roll back tx.
type Func func(ctx context.Context, tx *sql.Tx, e event.Event) error

// BatchFunc applies a batch of consecutive events (in global order) inside
// tx, for read models that write set-based (one multi-row statement per
// batch instead of one per event): the way to rebuild fast over a network
// database.
type BatchFunc func(ctx context.Context, tx *sql.Tx, events []event.Event) error

// Config configures a Projection. The zero value of each optional field
// means its default.
type Config struct {
	// Name identifies the projection's checkpoint. Keep it stable; a new
	// name starts from the beginning of the log. Required.
	Name string
	// Events is the event store read with ReadAll. Required.
	Events event.Store
	// Checkpoints stores the checkpoint; its DB is where the read model
	// lives. Usually the same store as Events. Required.
	Checkpoints CheckpointStore
	// Apply applies one event. Required unless ApplyBatch is set.
	Apply Func
	// ApplyBatch, when set, applies each batch in one call instead of
	// Apply per event. If it fails and Apply is set too, the batch is
	// applied again event by event, so the events before a bad one still
	// commit; without Apply the whole batch is retried after a backoff.
	ApplyBatch BatchFunc
	// BatchSize is the most events applied in one transaction. Defaults to
	// 500.
	BatchSize int
	// Notifier wakes the projection when events commit. Defaults to Events
	// if it implements Notifier (store/sqlite and store/postgres do);
	// without one the projection polls.
	Notifier Notifier
	// PollInterval is how often an idle projection looks for new events
	// without a notification. Defaults to 1s with a Notifier (a safety
	// net) and 100ms without.
	PollInterval time.Duration
	// Counter counts events for Rebuild's progress and Status's lag.
	// Defaults to Events, else Checkpoints, if it implements Counter.
	Counter Counter
	// MinBackoff and MaxBackoff bound the exponential backoff after a
	// failure. Default to 100ms and 10s.
	MinBackoff, MaxBackoff time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// TracerProvider receives the projection's spans (see the package
	// documentation, Observability). Defaults to otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider receives the projection's metrics. Defaults to
	// otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
}

func (c Config) withDefaults() (Config, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("projection "+c.Name+": "+format, args...))
	}
	if c.Name == "" {
		bad("Config.Name is required")
	}
	if c.Events == nil {
		bad("Config.Events is required")
	}
	if c.Checkpoints == nil {
		bad("Config.Checkpoints is required")
	}
	if c.Apply == nil && c.ApplyBatch == nil {
		bad("Config.Apply or Config.ApplyBatch is required")
	}
	if c.BatchSize < 0 {
		bad("Config.BatchSize %d: must not be negative", c.BatchSize)
	}
	for name, d := range map[string]time.Duration{"PollInterval": c.PollInterval, "MinBackoff": c.MinBackoff, "MaxBackoff": c.MaxBackoff} {
		if d < 0 {
			bad("Config.%s %s: must not be negative", name, d)
		}
	}
	if c.MinBackoff > 0 && c.MaxBackoff > 0 && c.MinBackoff > c.MaxBackoff {
		bad("Config.MinBackoff %s exceeds MaxBackoff %s", c.MinBackoff, c.MaxBackoff)
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	c.BatchSize = cmp.Or(c.BatchSize, 500)
	if c.Notifier == nil {
		c.Notifier, _ = c.Events.(Notifier)
	}
	if c.Notifier != nil {
		c.PollInterval = cmp.Or(c.PollInterval, time.Second)
	} else {
		c.PollInterval = cmp.Or(c.PollInterval, 100*time.Millisecond)
	}
	if c.Counter == nil {
		c.Counter, _ = c.Events.(Counter)
	}
	if c.Counter == nil {
		c.Counter, _ = c.Checkpoints.(Counter)
	}
	c.MinBackoff = cmp.Or(c.MinBackoff, 100*time.Millisecond)
	c.MaxBackoff = cmp.Or(c.MaxBackoff, 10*time.Second)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
	}
	if c.MeterProvider == nil {
		c.MeterProvider = otel.GetMeterProvider()
	}
	return c, nil
}

// Projection builds a read model from the event store's global log: see
// the package documentation. It is safe for concurrent use; its steps run
// one at a time.
type Projection struct {
	cfg Config
	tel telemetry

	mu     sync.Mutex // one step at a time; held by Rebuild throughout
	cursor event.Cursor
	known  bool                         // cursor is the stored checkpoint as last seen
	seen   atomic.Pointer[event.Cursor] // cursor, for the lag gauge

	running   atomic.Bool
	lastErrMu sync.Mutex
	lastErr   error
}

// New validates cfg and returns a projection; call Run, CatchUp or Rebuild.
func New(cfg Config) (*Projection, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Projection{cfg: cfg, tel: newTelemetry(cfg.TracerProvider, cfg.MeterProvider, cfg.Name)}, nil
}

// Name returns the projection's name.
func (p *Projection) Name() string { return p.cfg.Name }

// Run applies events as they are committed until ctx ends, then returns
// nil. It catches up in batches, then waits for the Notifier (or polls).
// A failure — the database, or Apply returning an error — is logged and
// retried with exponential backoff; Status reports it meanwhile. Apply
// errors are not skipped: the projection waits at the failing event until
// it applies.
func (p *Projection) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return fmt.Errorf("projection %s: already running", p.cfg.Name)
	}
	defer p.running.Store(false)
	defer p.registerLag()()
	log := p.cfg.Logger.With("projection", p.cfg.Name)

	var wake <-chan struct{}
	if p.cfg.Notifier != nil {
		ch, err := p.cfg.Notifier.Listen(ctx)
		if err != nil {
			log.WarnContext(ctx, "projection: cannot listen for new events; polling", "err", err, "every", p.cfg.PollInterval)
		} else {
			wake = ch
		}
	}
	// Without a Final error the loop ends only with ctx.
	_ = runloop.Run(ctx, runloop.Config{
		Wake:    wake,
		Poll:    p.cfg.PollInterval,
		BackOff: runloop.New(p.cfg.MinBackoff, p.cfg.MaxBackoff),
		Step: func(ctx context.Context) (bool, error) {
			_, more, err := p.step(ctx)
			if ctx.Err() == nil {
				p.setErr(err)
			}
			return more, err
		},
		OnError: func(ctx context.Context, err error, wait time.Duration) {
			log.WarnContext(ctx, "projection: batch failed; retrying", "err", err, "retry_in", wait.Round(time.Millisecond))
		},
	})
	return nil
}

// CatchUp applies every event committed so far, in batches, and returns
// how many it applied. It stops at the first failure.
func (p *Projection) CatchUp(ctx context.Context) (int64, error) {
	var total int64
	for {
		n, more, err := p.step(ctx)
		total += int64(n)
		if err != nil || !more {
			return total, err
		}
	}
}

// step applies one batch. more reports that another step may find events
// at once: the batch was full, or another runner moved the checkpoint.
func (p *Projection) step(ctx context.Context) (n int, more bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stepLocked(ctx)
}

func (p *Projection) stepLocked(ctx context.Context) (n int, more bool, err error) {
	defer p.noteCursor()
	if !p.known {
		c, err := p.readCheckpoint(ctx)
		if err != nil {
			return 0, false, err
		}
		p.cursor, p.known = c, true
		p.noteCursor()
	}
	// Read outside the transaction: a slow read does not hold the
	// checkpoint lock (SQLite's write lock).
	evs, err := p.cfg.Events.ReadAll(ctx, p.cursor, p.cfg.BatchSize)
	if err != nil {
		return 0, false, fmt.Errorf("projection %s: read events after position %d: %w", p.cfg.Name, p.cursor.Position, err)
	}
	if len(evs) == 0 {
		// Idle: re-read the stored checkpoint next time, so a reset made
		// elsewhere (cqrskit projections rebuild) takes effect without
		// waiting for a new event.
		p.known = false
		return 0, false, nil
	}
	ctx, span := p.startBatchSpan(ctx, evs)
	n, moved, err := p.apply(ctx, evs)
	p.tel.applied.Add(ctx, int64(n), p.tel.attrs)
	endBatchSpan(span, n, err)
	return n, moved || (err == nil && len(evs) == p.cfg.BatchSize), err
}

// readCheckpoint reads the stored checkpoint in a transaction of its own.
func (p *Projection) readCheckpoint(ctx context.Context) (event.Cursor, error) {
	tx, err := p.cfg.Checkpoints.DB().BeginTx(ctx, nil)
	if err != nil {
		return event.Cursor{}, fmt.Errorf("projection %s: read checkpoint: begin: %w", p.cfg.Name, err)
	}
	defer tx.Rollback()
	c, err := p.cfg.Checkpoints.Checkpoint(ctx, tx, p.cfg.Name)
	if err != nil {
		return event.Cursor{}, fmt.Errorf("projection %s: read checkpoint: %w", p.cfg.Name, err)
	}
	return c, nil
}

// apply applies evs, which follow p.cursor, with the checkpoint in one
// transaction. If the stored checkpoint is no longer p.cursor, another
// runner moved it: nothing is applied and moved is true. If Apply fails on
// an event, the events before it are applied (in a transaction of their
// own) and the error is returned.
func (p *Projection) apply(ctx context.Context, evs []event.Event) (n int, moved bool, err error) {
	return p.applyEvents(ctx, evs, p.cfg.ApplyBatch != nil)
}

// applyEvents is apply; batch selects ApplyBatch over Apply.
func (p *Projection) applyEvents(ctx context.Context, evs []event.Event, batch bool) (n int, moved bool, err error) {
	fail := func(step string, err error) (int, bool, error) {
		p.known = false // the commit may or may not have happened
		return 0, false, fmt.Errorf("projection %s: %s: %w", p.cfg.Name, step, err)
	}
	cs := p.cfg.Checkpoints
	tx, err := cs.DB().BeginTx(ctx, nil)
	if err != nil {
		return fail("begin", err)
	}
	defer tx.Rollback()
	stored, err := cs.Checkpoint(ctx, tx, p.cfg.Name)
	if err != nil {
		return fail("lock checkpoint", err)
	}
	if stored != p.cursor {
		p.cursor = stored
		return 0, true, nil
	}
	if batch {
		if err := p.callBatch(ctx, tx, evs); err != nil {
			_ = tx.Rollback()
			err = fmt.Errorf("projection %s: apply batch of %d events (positions %d..%d): %w",
				p.cfg.Name, len(evs), evs[0].Position, evs[len(evs)-1].Position, err)
			if p.cfg.Apply == nil {
				return 0, false, err
			}
			n, moved, perr := p.applyEvents(ctx, evs, false) // event by event, with Apply
			if perr != nil {
				return n, moved, errors.Join(err, perr)
			}
			return n, moved, nil
		}
		return p.commitBatch(ctx, tx, evs)
	}
	for i, e := range evs {
		if err := p.call(ctx, tx, e); err != nil {
			_ = tx.Rollback()
			err = fmt.Errorf("projection %s: apply event %s (%s, stream %s version %d, position %d): %w",
				p.cfg.Name, e.ID, e.Type, e.StreamID, e.Version, e.Position, err)
			if i == 0 {
				return 0, false, err
			}
			n, moved, perr := p.applyEvents(ctx, evs[:i], false)
			return n, moved, errors.Join(err, perr)
		}
	}
	return p.commitBatch(ctx, tx, evs)
}

// commitBatch saves the checkpoint after evs and commits tx.
func (p *Projection) commitBatch(ctx context.Context, tx *sql.Tx, evs []event.Event) (int, bool, error) {
	last := evs[len(evs)-1].Cursor()
	if err := p.cfg.Checkpoints.SaveCheckpoint(ctx, tx, p.cfg.Name, last); err != nil {
		p.known = false
		return 0, false, fmt.Errorf("projection %s: save checkpoint: %w", p.cfg.Name, err)
	}
	if err := tx.Commit(); err != nil {
		p.known = false // the commit may or may not have happened
		return 0, false, fmt.Errorf("projection %s: commit: %w", p.cfg.Name, err)
	}
	p.cursor = last
	return len(evs), false, nil
}

// callBatch runs ApplyBatch, turning a panic into an error.
func (p *Projection) callBatch(ctx context.Context, tx *sql.Tx, evs []event.Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			p.cfg.Logger.ErrorContext(ctx, "projection: panic in batch apply func",
				"projection", p.cfg.Name, "events", len(evs), "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("batch apply func panicked: %v", r)
		}
	}()
	return p.cfg.ApplyBatch(ctx, tx, evs)
}

// call runs Apply, turning a panic into an error with the stack logged.
func (p *Projection) call(ctx context.Context, tx *sql.Tx, e event.Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			p.cfg.Logger.ErrorContext(ctx, "projection: panic in apply func",
				"projection", p.cfg.Name, "event_id", e.ID, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("apply func panicked: %v", r)
		}
	}()
	return p.cfg.Apply(ctx, tx, e)
}

func (p *Projection) setErr(err error) {
	p.lastErrMu.Lock()
	p.lastErr = err
	p.lastErrMu.Unlock()
}
