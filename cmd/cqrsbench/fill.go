package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cqrskit/cqrskit/event"
)

// fill appends total events of stream type st through the store,
// perStream to a new stream each (named prefix-<n>), from a few concurrent
// writers. payload(i) is the i-th event's data.
func fill(ctx context.Context, e *env, b *backend, what, st, prefix string, total, perStream int, payload func(i int) []byte) error {
	start := time.Now()
	writers := 4
	if !b.postgres() {
		writers = 1 // SQLite has one writer at a time anyway
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	chunks := (total + perStream - 1) / perStream
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for ctx.Err() == nil {
				c := int(next.Add(1)) - 1
				if c >= chunks {
					return
				}
				evs := make([]event.Event, min(perStream, total-c*perStream))
				for j := range evs {
					evs[j] = event.Event{StreamType: st, Type: typeCreated, Data: payload(c*perStream + j),
						Metadata: event.Metadata{CorrelationID: "cqrsbench"}}
				}
				if _, err := b.store.Append(ctx, fmt.Sprintf("%s-%d", prefix, c), event.NoStream, evs); err != nil {
					cancel(fmt.Errorf("fill %s: %w", what, err))
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if d := time.Since(start); d > 2*time.Second {
		fmt.Fprintf(e.stderr, "cqrsbench:   filled %s: %d events in %s\n", what, total, d.Round(100*time.Millisecond))
	}
	return nil
}

// productPayload is the payload of the sample's product.created, about
// the size of a real one.
var productPayload = []byte(`{"name":"Widget","sku":"W-0001","price_cents":1999,"stock":10}`)
