package main

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// pair holds what alternate measured: the rate of each side in
// operations per second.
type pair struct {
	framework, raw float64
}

// alternateRounds is how many blocks of work each side runs. Blocks of the
// two sides alternate, so a machine whose speed drifts (other work on the
// same cores, the database's checkpoints) slows both sides alike.
const alternateRounds = 10

// alternate runs ops operations of each side, fw and raw, on writers
// goroutines: in up to alternateRounds blocks per side, a framework block,
// then a raw one (the order flips every round). The sides never overlap,
// so they never contend with each other (SQLite's one writer, row locks).
// Each side's rate is its operations over the wall time of its blocks.
//
// First each side runs warmups(writers, ops) operations unmeasured, so
// neither pays alone for opening the pool's connections and preparing
// statements. Operation i of a side is called with i in [0,
// ops+warmups): the measured ones first, the warm-up ones last. The
// first error stops the run.
func alternate(ctx context.Context, writers, ops int, fw, raw func(ctx context.Context, i int) error) (pair, error) {
	if w := warmups(writers, ops); w > 0 {
		for _, f := range []func(context.Context, int) error{fw, raw} {
			if err := parallel(ctx, writers, ops, ops+w, f); err != nil {
				return pair{}, err
			}
		}
	}
	// Blocks of at least 4 operations per writer, so that the ramp-up and
	// the tail of a block (fewer than writers busy) stay a small share.
	rounds := max(1, min(alternateRounds, ops/(4*writers)))
	var fwTime, rawTime time.Duration
	for r := range rounds {
		from, to := ops*r/rounds, ops*(r+1)/rounds
		sides := []struct {
			f  func(context.Context, int) error
			at *time.Duration
		}{{fw, &fwTime}, {raw, &rawTime}}
		if r%2 == 1 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, s := range sides {
			start := time.Now()
			if err := parallel(ctx, writers, from, to, s.f); err != nil {
				return pair{}, err
			}
			*s.at += time.Since(start)

		}
	}
	return pair{framework: float64(ops) / fwTime.Seconds(), raw: float64(ops) / rawTime.Seconds()}, nil
}

// warmups is how many unmeasured operations alternate runs per side: two
// per writer, at most a tenth of the measured ones.
func warmups(writers, ops int) int { return min(2*writers, ops/10) }

// parallel calls f for every i in [from, to) from writers goroutines and
// returns the first error, which stops the others.
func parallel(ctx context.Context, writers, from, to int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	next.Store(int64(from))
	var wg sync.WaitGroup
	for range min(writers, to-from) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= to {
					return
				}
				if err := f(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// timeIt runs f once and returns ops/elapsed.
func timeIt(ops int, f func() error) (float64, error) {
	start := time.Now()
	if err := f(); err != nil {
		return 0, err
	}
	return float64(ops) / time.Since(start).Seconds(), nil
}

// percentiles returns the p-quantiles of ds (nearest rank), sorting ds.
func percentiles(ds []time.Duration, ps ...float64) []time.Duration {
	slices.Sort(ds)
	out := make([]time.Duration, len(ps))
	if len(ds) == 0 {
		return out
	}
	for i, p := range ps {
		k := int(p*float64(len(ds))+0.5) - 1
		out[i] = ds[min(max(k, 0), len(ds)-1)]
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
