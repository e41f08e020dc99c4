package faultmodel

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Dice is a seeded source of fault decisions, safe for concurrent use.
// While stopped (Stop) every Roll is false: the faults have ended.
type Dice struct {
	mu      sync.Mutex
	r       *rand.Rand
	stopped atomic.Bool
}

// NewDice returns dice seeded from seed; stream separates the dice of one
// run's injectors, so each draws its own sequence.
func NewDice(seed, stream uint64) *Dice {
	return &Dice{r: rand.New(rand.NewPCG(seed, stream))}
}

// Roll reports true with probability p, never once stopped.
func (d *Dice) Roll(p float64) bool {
	if p <= 0 || d.stopped.Load() {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.r.Float64() < p
}

// IntN returns a number in [0, n), n > 0, whether or not stopped.
func (d *Dice) IntN(n int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.r.IntN(n)
}

// Float64 returns a number in [0, 1), whether or not stopped.
func (d *Dice) Float64() float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.r.Float64()
}

// Between returns a duration in [lo, hi].
func (d *Dice) Between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(d.IntN(int(hi-lo)+1))
}

// Stop ends the faults: Roll reports false from now on.
func (d *Dice) Stop() { d.stopped.Store(true) }

// Stopped reports whether Stop was called.
func (d *Dice) Stopped() bool { return d.stopped.Load() }
