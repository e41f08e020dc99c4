package main

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// pair holds what interleave measured: the rate of each side in
// operations per second.
type pair struct {
	framework, raw float64
}

// interleave runs ops operations of each side, fw and raw, on writers
// goroutines. Each goroutine alternates one operation of each side (the
// order flips every time), so both sides run under the same load on a
// shared, busy machine, and each side's rate is writers / its mean
// latency. The first error stops the run.
func interleave(ctx context.Context, writers, ops int, fw, raw func(ctx context.Context, i int) error) (pair, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next, fwNanos, rawNanos atomic.Int64
	var wg sync.WaitGroup
	timed := func(f func(context.Context, int) error, i int, nanos *atomic.Int64) error {
		start := time.Now()
		err := f(ctx, i)
		nanos.Add(int64(time.Since(start)))
		return err
	}
	for range writers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= ops {
					return
				}
				var err error
				if i%2 == 0 {
					err = timed(fw, i, &fwNanos)
					if err == nil {
						err = timed(raw, i, &rawNanos)
					}
				} else {
					err = timed(raw, i, &rawNanos)
					if err == nil {
						err = timed(fw, i, &fwNanos)
					}
				}
				if err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return pair{}, err
	}
	rate := func(nanos int64) float64 {
		return float64(writers) * float64(ops) / time.Duration(nanos).Seconds()
	}
	return pair{framework: rate(fwNanos.Load()), raw: rate(rawNanos.Load())}, nil
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
