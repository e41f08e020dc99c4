package faultmodel

import (
	"context"
	"sync"

	"github.com/cqrskit/cqrskit/messagebus"
)

// Redeliverer wraps a messagebus.Handler with the broker's at-least-once
// faults: a delivery handed over twice (Dup), and a delivery the handler
// acknowledged handed over again later, before a newer one (Late).
type Redeliverer struct {
	Dice      *Dice
	Dup, Late float64

	mu  sync.Mutex
	old []messagebus.Delivery
}

// Wrap returns h with the faults.
func (r *Redeliverer) Wrap(h messagebus.Handler) messagebus.Handler {
	return func(ctx context.Context, d messagebus.Delivery) error {
		if r.Dice.Roll(r.Late) {
			r.mu.Lock()
			var old messagebus.Delivery
			ok := len(r.old) > 0
			if ok {
				k := r.Dice.IntN(len(r.old))
				old = r.old[k]
				r.old = append(r.old[:k], r.old[k+1:]...)
			}
			r.mu.Unlock()
			if ok {
				old.Attempt++
				_ = h(ctx, old) // already handled: must be skipped
			}
		}
		if r.Dice.Roll(r.Dup) {
			_ = h(ctx, d)
		}
		err := h(ctx, d)
		if err == nil && r.Dice.Roll(r.Late*4) {
			r.mu.Lock()
			if len(r.old) < 64 {
				r.old = append(r.old, d)
			}
			r.mu.Unlock()
		}
		return err
	}
}
