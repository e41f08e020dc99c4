package outbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/internal/runloop"
	"github.com/cqrskit/cqrskit/messagebus"
)

// Publisher is what the relay needs from a broker: Publish returns after the
// broker acknowledged every message, or an error. A *messagebus.PublishError
// says which messages failed; any other error fails the whole batch.
type Publisher interface {
	Publish(ctx context.Context, msgs ...messagebus.Message) error
}

// Config configures a Relay. The zero value of each optional field means its
// default.
type Config struct {
	// Store is the outbox to drain. Required.
	Store Store
	// Publisher is the broker. Required.
	Publisher Publisher
	// Leader elects the active relay. Defaults to an in-process LocalLeader,
	// which is right only when a single process relays this outbox.
	Leader Leader
	// Notifier wakes the relay on new rows. Defaults to none: the relay polls
	// every PollInterval.
	Notifier Notifier
	// Topic names the broker topic of an event. Defaults to the event's
	// StreamType, or "events" when that is empty.
	Topic func(event.Event) string
	// BatchSize is the most rows claimed and published at once. Defaults to
	// 1000.
	BatchSize int
	// PollInterval is how often an idle relay looks for rows without a
	// notification. Defaults to 1s with a Notifier (a safety net) and 100ms
	// without.
	PollInterval time.Duration
	// StandbyInterval is how often a standby relay tries to take over.
	// Defaults to 1s.
	StandbyInterval time.Duration
	// MinBackoff and MaxBackoff bound the exponential backoff after a broker
	// or database error. Default to 100ms and 10s.
	MinBackoff, MaxBackoff time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// TracerProvider receives the relay's spans (see the package
	// documentation, Observability). Defaults to otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider receives the relay's metrics. Defaults to
	// otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
}

func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("outbox relay: Config.Store is required"))
	}
	if c.Publisher == nil {
		errs = append(errs, errors.New("outbox relay: Config.Publisher is required"))
	}
	for name, v := range map[string]int64{
		"BatchSize": int64(c.BatchSize), "PollInterval": int64(c.PollInterval),
		"StandbyInterval": int64(c.StandbyInterval), "MinBackoff": int64(c.MinBackoff),
		"MaxBackoff": int64(c.MaxBackoff),
	} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("outbox relay: Config.%s = %d: must not be negative", name, v))
		}
	}
	if c.MinBackoff > 0 && c.MaxBackoff > 0 && c.MinBackoff > c.MaxBackoff {
		errs = append(errs, fmt.Errorf("outbox relay: Config.MinBackoff %s exceeds MaxBackoff %s", c.MinBackoff, c.MaxBackoff))
	}
	if len(errs) > 0 {
		return c, errors.Join(errs...)
	}
	if c.Leader == nil {
		c.Leader = &LocalLeader{}
	}
	if c.Topic == nil {
		c.Topic = DefaultTopic
	}
	c.BatchSize = cmp.Or(c.BatchSize, 1000)
	if c.Notifier != nil {
		c.PollInterval = cmp.Or(c.PollInterval, time.Second)
	} else {
		c.PollInterval = cmp.Or(c.PollInterval, 100*time.Millisecond)
	}
	c.StandbyInterval = cmp.Or(c.StandbyInterval, time.Second)
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

// DefaultTopic is the event's StreamType, or "events" when empty.
func DefaultTopic(e event.Event) string { return cmp.Or(e.StreamType, "events") }

// isPermanent reports a broker rejection that retrying soon will not fix.
func isPermanent(err error) bool {
	return errors.Is(err, messagebus.ErrMessageTooLarge) || errors.Is(err, messagebus.ErrInvalidArgument)
}

// Relay moves outbox rows to a broker: it reads a batch in ID order,
// publishes it (pipelined), waits for every acknowledgement and only then
// deletes the rows. A crash between publish and delete republishes the
// batch with the same message IDs, which the broker de-duplicates; no row
// is ever deleted before its acknowledgement, so nothing is lost.
type Relay struct {
	cfg Config
	tel relayTelemetry

	published atomic.Int64
	failed    atomic.Int64
	parked    atomic.Int64
	active    atomic.Bool
	lastErrMu sync.Mutex
	lastErr   error
}

// NewRelay validates cfg and returns a relay; call Run to start it.
func NewRelay(cfg Config) (*Relay, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Relay{cfg: cfg, tel: newRelayTelemetry(cfg.TracerProvider, cfg.MeterProvider)}, nil
}

// Progress is a snapshot of the relay's state.
type Progress struct {
	// Active reports whether this relay holds leadership.
	Active bool
	// Published counts events this relay published and deleted.
	Published int64
	// Failed counts publish attempts that failed (per message).
	Failed int64
	// ParkedByRelay counts rows this relay parked.
	ParkedByRelay int64
	// Backlog, OldestAt and Parked describe the outbox (see Stats).
	Backlog  int64
	OldestAt time.Time
	Parked   int64
	// LastError is the most recent error, nil after a success.
	LastError error
}

// OldestAge is how long the oldest unpublished row has waited.
func (p Progress) OldestAge() time.Duration {
	if p.OldestAt.IsZero() {
		return 0
	}
	return time.Since(p.OldestAt)
}

// Progress reports the relay's counters and the outbox backlog.
func (r *Relay) Progress(ctx context.Context) (Progress, error) {
	st, err := r.cfg.Store.Stats(ctx)
	r.lastErrMu.Lock()
	last := r.lastErr
	r.lastErrMu.Unlock()
	return Progress{
		Active: r.active.Load(), Published: r.published.Load(), Failed: r.failed.Load(),
		ParkedByRelay: r.parked.Load(), Backlog: st.Backlog, OldestAt: st.OldestAt, Parked: st.Parked,
		LastError: last,
	}, err
}

// Run relays until ctx ends, then returns nil. While another relay is active
// it waits as a hot standby and takes over when that one's leadership ends.
func (r *Relay) Run(ctx context.Context) error {
	log := r.cfg.Logger
	defer r.registerGauges()()
	standby := time.NewTicker(r.cfg.StandbyInterval)
	defer standby.Stop()
	loggedStandby := false
	for {
		lease, err := r.cfg.Leader.TryAcquire(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			r.setErr(err)
			r.tel.failed(ctx, opLeadership, 1)
			log.Warn("outbox relay: cannot try for leadership; will retry", "err", err, "retry_in", r.cfg.StandbyInterval)
		case lease == nil:
			if !loggedStandby {
				log.Info("outbox relay: another relay is active; standing by")
				loggedStandby = true
			}
		default:
			loggedStandby = false
			log.Info("outbox relay: active")
			r.active.Store(true)
			err := r.lead(ctx, lease)
			r.active.Store(false)
			relCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if rerr := lease.Release(relCtx); rerr != nil {
				log.Warn("outbox relay: release leadership", "err", rerr)
			}
			cancel()
			if ctx.Err() != nil {
				log.Info("outbox relay: stopped")
				return nil
			}
			log.Warn("outbox relay: leadership lost; standing by", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-standby.C:
		}
	}
}

// lead drains the outbox while leadership holds. It returns when ctx ends
// or the lease cannot be kept.
func (r *Relay) lead(ctx context.Context, lease Lease) error {
	var wake <-chan struct{}
	if r.cfg.Notifier != nil {
		// The subscription lives as long as this term of leadership.
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch, err := r.cfg.Notifier.Listen(lctx)
		if err != nil {
			r.cfg.Logger.Warn("outbox relay: cannot listen for new rows; polling", "err", err, "every", r.cfg.PollInterval)
		} else {
			wake = ch
		}
	}
	lc := newLeaseClock(lease, r.cfg.StandbyInterval/2)
	return runloop.Run(ctx, runloop.Config{
		Wake:    wake,
		Poll:    r.cfg.PollInterval,
		BackOff: runloop.New(r.cfg.MinBackoff, r.cfg.MaxBackoff),
		Step: func(ctx context.Context) (more bool, err error) {
			if err := lc.keepIfDue(ctx); err != nil {
				return false, err
			}
			n, err := r.drainOnce(ctx, lc)
			// More rows are likely waiting after a full batch. Without
			// notifications, rows that committed while this batch was
			// published are picked up at once rather than a poll interval
			// later; with a Notifier their wake-up is pending.
			return n == r.cfg.BatchSize || (n > 0 && wake == nil), err
		},
		Final: func(err error) bool {
			var lost *leaseLostError
			return errors.As(err, &lost)
		},
		OnError: func(_ context.Context, err error, wait time.Duration) {
			r.setErr(err)
			r.cfg.Logger.Warn("outbox relay: batch failed; rows stay in the outbox and will be retried",
				"err", err, "retry_in", wait.Round(time.Millisecond))
		},
	})
}

// DrainOnce publishes one batch and deletes what the broker acknowledged,
// returning the number of rows read. It is Run's inner step, exported for
// tools and tests that drive the relay by hand; it does not take leadership.
func (r *Relay) DrainOnce(ctx context.Context) (int, error) { return r.drainOnce(ctx, nil) }

// drainOnce reads one batch, publishes it and deletes, for each stream,
// the rows up to the stream's first failure. A row the broker rejected for
// good is parked. With a lease (nil from DrainOnce) it confirms leadership
// before the publish and before the delete, and bounds the publish by the
// lease's validity.
func (r *Relay) drainOnce(ctx context.Context, lc *leaseClock) (_ int, err error) {
	recs, err := r.cfg.Store.Pending(ctx, r.cfg.BatchSize)
	if err != nil {
		r.tel.failed(ctx, opRead, 1)
		return 0, fmt.Errorf("read outbox: %w", err)
	}
	if len(recs) == 0 {
		return 0, nil
	}
	msgs := make([]messagebus.Message, len(recs))
	for i, rec := range recs {
		msgs[i] = envelope.Message(rec.Event, r.cfg.Topic(rec.Event))
	}
	ctx, span := r.startDrainSpan(ctx, recs)
	published := 0
	defer func() { endDrainSpan(span, published, err) }()
	pubCtx := ctx
	if lc != nil {
		deadline, err := lc.confirmPublish(ctx)
		if err != nil {
			return 0, err
		}
		var cancel context.CancelFunc
		pubCtx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	spans := r.startPublishSpans(ctx, recs, msgs)
	pubErr := r.cfg.Publisher.Publish(pubCtx, msgs...)
	failed := map[int]error{}
	if pubErr != nil {
		var pe *messagebus.PublishError
		if !errors.As(pubErr, &pe) {
			endPublishSpans(spans, nil, pubErr)
			r.failed.Add(int64(len(recs)))
			r.tel.failed(ctx, opPublish, len(recs))
			return len(recs), fmt.Errorf("publish %d events (outbox rows %d..%d): %w",
				len(recs), recs[0].ID, recs[len(recs)-1].ID, pubErr)
		}
		for _, f := range pe.Failed {
			failed[f.Index] = f.Err
		}
	}
	endPublishSpans(spans, failed, nil)
	done, park := r.settle(ctx, recs, failed)
	// Deleting and parking must not be cut short by shutdown: the
	// messages are already acknowledged (or rejected).
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if lc != nil && (len(done) > 0 || len(park) > 0) {
		if _, err := lc.confirm(wctx); err != nil {
			return len(recs), fmt.Errorf("%w; %d published rows stay in the outbox for the next leader (the broker de-duplicates them)", err, len(done))
		}
	}
	if len(done) > 0 {
		if err := r.cfg.Store.Delete(wctx, done); err != nil {
			r.tel.failed(ctx, opDelete, 1)
			return len(recs), fmt.Errorf("delete %d published outbox rows (they will be republished and de-duplicated by the broker): %w", len(done), err)
		}
		r.published.Add(int64(len(done)))
		r.tel.published.Add(ctx, int64(len(done)))
		published = len(done)
	}
	for _, p := range park {
		if err := r.park(wctx, p.rec, p.err); err != nil {
			return len(recs), err
		}
	}
	if pubErr != nil && len(failed) > len(park) {
		return len(recs), fmt.Errorf("publish: %d of %d events stay in the outbox: %w", len(failed)-len(park), len(recs), pubErr)
	}
	r.setErr(nil)
	return len(recs), nil
}

type rejected struct {
	rec Record
	err error
}

// settle decides, from the per-message failures, which rows to delete and
// which to park. Per stream only the rows before its first failure are
// deleted: a Publisher must not send a message after a failed one with the
// same key, and should one report a later message acknowledged anyway, its
// row stays and is published again after the failed one (a duplicate the
// consumers absorb) rather than leaving the stream reordered for good.
func (r *Relay) settle(ctx context.Context, recs []Record, failed map[int]error) (done []int64, park []rejected) {
	done = make([]int64, 0, len(recs))
	var stopped map[string]bool // streams with a failed row in this batch
	for i, rec := range recs {
		stream := rec.Event.StreamID
		ferr, bad := failed[i]
		switch {
		case bad:
			r.failed.Add(1)
			r.tel.failed(ctx, opPublish, 1)
			if isPermanent(ferr) && !stopped[stream] {
				park = append(park, rejected{rec, ferr})
			}
			if stopped == nil {
				stopped = map[string]bool{}
			}
			stopped[stream] = true
		case stopped[stream]:
			r.cfg.Logger.Error("outbox relay: the publisher acknowledged a message after a failed one of the same stream; "+
				"its row stays in the outbox and is published again in order",
				"outbox_id", rec.ID, "event_id", rec.Event.ID, "stream", stream, "version", rec.Event.Version)
		default:
			done = append(done, rec.ID)
		}
	}
	return done, park
}

// park moves a row the broker rejected for good out of the way of the
// other streams. Its stream's later rows wait behind it until an operator
// retries or discards it.
func (r *Relay) park(ctx context.Context, rec Record, reason error) error {
	if err := r.cfg.Store.Park(ctx, rec.ID, reason.Error()); err != nil {
		r.tel.failed(ctx, opPark, 1)
		return fmt.Errorf("park outbox row %d (event %s of stream %s), which the broker rejected (%v): %w",
			rec.ID, rec.Event.ID, rec.Event.StreamID, reason, err)
	}
	r.parked.Add(1)
	r.tel.parked.Add(ctx, 1)
	r.cfg.Logger.Error("outbox relay: the broker rejected an event for good; it is parked and its stream waits behind it "+
		"(cqrskit outbox parked list | retry | discard)",
		"outbox_id", rec.ID, "event_id", rec.Event.ID, "stream", rec.Event.StreamID,
		"version", rec.Event.Version, "type", rec.Event.Type, "err", reason)
	return nil
}

func (r *Relay) setErr(err error) {
	r.lastErrMu.Lock()
	r.lastErr = err
	r.lastErrMu.Unlock()
}
