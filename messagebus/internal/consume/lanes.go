package consume

import (
	"hash/fnv"
	"sync"
)

// Lanes runs functions on up to n goroutines, one lane per key: the
// functions given for one key run one at a time, in the order given, and
// functions of keys in different lanes run at the same time. With n <= 1
// there are no goroutines: Go runs f at once, in the caller's goroutine.
//
// A subscription gives each message of a fetch to its key's lane and waits
// for all of them before the next fetch, so a key's order holds across
// fetches too.
type Lanes struct {
	lanes []chan func()
	wg    sync.WaitGroup
}

// NewLanes starts n lanes, each of which queues up to depth functions
// before Go blocks.
func NewLanes(n, depth int) *Lanes {
	l := &Lanes{}
	if n <= 1 {
		return l
	}
	l.lanes = make([]chan func(), n)
	for i := range l.lanes {
		c := make(chan func(), max(depth, 1))
		l.lanes[i] = c
		l.wg.Go(func() {
			for f := range c {
				f()
			}
		})
	}
	return l
}

// Go runs f on key's lane after the functions given before for that lane.
func (l *Lanes) Go(key string, f func()) {
	if l.lanes == nil {
		f()
		return
	}
	l.lanes[Lane(key, len(l.lanes))] <- f
}

// Wait returns once every function given has run. The Lanes cannot be
// used after it.
func (l *Lanes) Wait() {
	for _, c := range l.lanes {
		close(c)
	}
	l.wg.Wait()
}

// Lane is the lane of key among n.
func Lane(key string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}
