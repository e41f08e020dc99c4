package app

import (
	"testing"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/sample/domain"
)

// A commit wakes only the readers of its own product that wait for its
// version or an older one: a crowd of readers waiting for other products
// (a read model that lags under load) costs nothing per commit.
func TestNotifyAppliedWakesOnlyItsReaders(t *testing.T) {
	m := NewProducts(nil, nil, nil)
	ev := func(id string, v int64) event.Event {
		return event.Event{StreamType: domain.StreamType, StreamID: domain.StreamType + "-" + id, Version: v}
	}
	woken := func(w *waiter) bool {
		select {
		case <-w.woken:
			return true
		default:
			return false
		}
	}
	var others []*waiter
	for range 1000 {
		w, _, _ := m.wait("b", 2)
		others = append(others, w)
	}
	a3, local, _ := m.wait("a", 3)
	if local {
		t.Fatal("local before any NotifyApplied")
	}
	a5, _, doneA5 := m.wait("a", 5)
	for range 100 {
		m.NotifyApplied(ev("a", 4))
	}
	if !woken(a3) || woken(a5) {
		t.Errorf("after a@4: reader of a@3 woken %v (want true), of a@5 woken %v (want false)", woken(a3), woken(a5))
	}
	for i, w := range others {
		if woken(w) {
			t.Fatalf("reader %d of product b woken by commits of a", i)
		}
	}
	if _, local, _ := m.wait("c", 1); !local {
		t.Error("not local after NotifyApplied")
	}
	doneA5()
	if n := len(m.waiters["a"]); n != 0 {
		t.Errorf("%d readers of a still registered after the last one left", n)
	}
	m.Notify()
	for i, w := range others {
		if !woken(w) {
			t.Fatalf("reader %d of b not woken by Notify", i)
		}
	}
	if len(m.waiters) != 0 {
		t.Errorf("readers still registered after Notify: %d products", len(m.waiters))
	}
}
