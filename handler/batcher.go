package handler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cqrskit/cqrskit/messagebus"
)

// BatcherConfig configures a Batcher. The zero value means defaults.
type BatcherConfig struct {
	// MaxBatch is the most deliveries committed in one transaction.
	// Defaults to 100.
	MaxBatch int
	// MaxWait is how long a batch waits for more deliveries before it
	// commits, unless it is full. Defaults to 0: a batch commits at once,
	// holding what arrived while the previous one committed (group
	// commit), so a lone delivery never waits.
	MaxWait time.Duration
}

// Batcher gathers deliveries from concurrent Handle calls into batches for
// HandleBatch. Use b.Handle as the messagebus.Handler of every subscription
// that should share batches.
//
// A subscription acknowledges a message when its handler returns, and
// hands over the next one only then. So Handle blocks until the delivery's
// batch has committed (or the delivery was dead-lettered, or failed), and a
// batch can only hold deliveries from different subscriptions or goroutines
// handling at the same moment: one subscription alone yields batches of
// one. Batches grow with concurrency — several subscriptions of a NATS
// JetStream group, one per Kafka partition or per topic, several
// goroutines — up to MaxBatch.
//
// When a batch fails, its good deliveries are committed one by one and
// acknowledged; a delivery whose Func failed returns to its own Handle call,
// which retries it there with the handler's policy, so its backoff holds up
// neither its neighbours nor later batches.
//
// If a caller's ctx ends while its delivery is in a batch, Handle returns
// ctx's error at once: the broker delivers the message again, and the
// processed mark skips it if the batch committed after all. The batch is
// abandoned (rolled back) only when every caller in it has gone.
type Batcher struct {
	h   *Handler
	cfg BatcherConfig

	mu      sync.Mutex
	pending []*call
	running bool
	full    chan struct{} // a batch is full: stop waiting for MaxWait
}

type call struct {
	ctx  context.Context
	it   *item
	done chan callResult // buffered: the batch never waits for its caller
}

type callResult struct {
	err   error
	alone bool // the Func failed in the batch: retry in the caller
}

// NewBatcher returns a Batcher for h.
func NewBatcher(h *Handler, cfg BatcherConfig) (*Batcher, error) {
	var errs []error
	if h == nil {
		errs = append(errs, errors.New("handler batcher: a Handler is required"))
	}
	if cfg.MaxBatch < 0 {
		errs = append(errs, fmt.Errorf("handler batcher: BatcherConfig.MaxBatch = %d: must not be negative", cfg.MaxBatch))
	}
	if cfg.MaxWait < 0 {
		errs = append(errs, fmt.Errorf("handler batcher: BatcherConfig.MaxWait = %s: must not be negative", cfg.MaxWait))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.MaxBatch = cmp.Or(cfg.MaxBatch, 100)
	return &Batcher{h: h, cfg: cfg, full: make(chan struct{}, 1)}, nil
}

// Handle adds d to the next batch and returns its result once the batch
// is done, with Handler.Handle's meaning: nil acknowledges the message.
//
// Each delivery gets its own "handle <type>" span in its message's trace,
// as with Handler.Handle; the span of the batch that committed it is
// linked to every such trace.
func (b *Batcher) Handle(ctx context.Context, d messagebus.Delivery) error {
	it := b.h.newItem(d)
	ctx, span := b.h.startItemSpan(ctx, it)
	err := b.handle(ctx, it)
	endSpan(span, err)
	return err
}

// handle is Handle within the delivery's span.
func (b *Batcher) handle(ctx context.Context, it *item) error {
	c := &call{ctx: ctx, it: it, done: make(chan callResult, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	if len(b.pending) >= b.cfg.MaxBatch {
		select {
		case b.full <- struct{}{}:
		default:
		}
	}
	if !b.running {
		b.running = true
		go b.run()
	}
	b.mu.Unlock()

	select {
	case r := <-c.done:
		if r.alone {
			return b.h.retry(ctx, c.it)
		}
		return r.err
	case <-ctx.Done():
		b.mu.Lock()
		if i := slices.Index(b.pending, c); i >= 0 {
			b.pending = slices.Delete(b.pending, i, i+1)
		}
		b.mu.Unlock()
		return ctx.Err()
	}
}

// run commits batches until none is pending.
func (b *Batcher) run() {
	for {
		b.mu.Lock()
		if b.cfg.MaxWait > 0 && len(b.pending) > 0 && len(b.pending) < b.cfg.MaxBatch {
			b.mu.Unlock()
			t := time.NewTimer(b.cfg.MaxWait)
			select {
			case <-t.C:
			case <-b.full:
			}
			t.Stop()
			b.mu.Lock()
		}
		n := min(len(b.pending), b.cfg.MaxBatch)
		if n == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		calls := slices.Clone(b.pending[:n])
		b.pending = slices.Delete(b.pending, 0, n)
		select {
		case <-b.full: // consumed by this batch
		default:
		}
		b.mu.Unlock()
		b.flush(calls)
		// Let the callers just released hand in their next deliveries
		// before the next batch is cut: otherwise it often holds one.
		runtime.Gosched()
	}
}

// flush handles one batch and hands each caller its result.
func (b *Batcher) flush(calls []*call) {
	ctx, cancel := batchContext(calls)
	defer cancel()
	items := make([]*item, len(calls))
	for i, c := range calls {
		items[i] = c.it
	}
	ctx, span := b.h.startBatcherSpan(ctx, calls)
	var errs []error
	alone := b.h.batch(ctx, items, func(i int, err error) {
		errs = append(errs, err)
		calls[i].done <- callResult{err: err}
	})
	for _, i := range alone {
		calls[i].done <- callResult{alone: true}
	}
	endSpan(span, errors.Join(errs...))
}

// batchContext returns a context for a batch that keeps the first caller's
// values and ends only when every caller's context has ended.
func batchContext(calls []*call) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(calls[0].ctx))
	var live atomic.Int64
	live.Store(int64(len(calls)))
	stops := make([]func() bool, len(calls))
	for i, c := range calls {
		stops[i] = context.AfterFunc(c.ctx, func() {
			if live.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}
