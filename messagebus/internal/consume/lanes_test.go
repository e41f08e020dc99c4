package consume

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLanesKeepEachKeysOrder(t *testing.T) {
	const keys, perKey = 16, 200
	l := NewLanes(8, keys*perKey)
	var mu sync.Mutex
	got := map[string][]int{}
	for i := range perKey {
		for k := range keys {
			key := fmt.Sprintf("k%d", k)
			l.Go(key, func() {
				mu.Lock()
				got[key] = append(got[key], i)
				mu.Unlock()
			})
		}
	}
	l.Wait()
	for k, seq := range got {
		for i, v := range seq {
			if v != i {
				t.Fatalf("key %s: position %d holds %d; the lane reordered it: %v", k, i, v, seq[:i+1])
			}
		}
		if len(seq) != perKey {
			t.Fatalf("key %s: %d functions ran, want %d", k, len(seq), perKey)
		}
	}
	if len(got) != keys {
		t.Fatalf("%d keys ran, want %d", len(got), keys)
	}
}

func TestLanesRunOtherKeysWhileOneBlocks(t *testing.T) {
	l := NewLanes(4, 16)
	blocked := "a"
	other := ""
	for i := range 100 { // a key in another lane than "a"
		if k := fmt.Sprintf("b%d", i); Lane(k, 4) != Lane(blocked, 4) {
			other = k
			break
		}
	}
	release := make(chan struct{})
	ran := make(chan struct{})
	l.Go(blocked, func() { <-release })
	l.Go(other, func() { close(ran) })
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("a key in another lane did not run while key a's function blocked")
	}
	close(release)
	l.Wait()
}

func TestLanesOneRunsInline(t *testing.T) {
	l := NewLanes(1, 0)
	var n atomic.Int32
	for range 3 {
		l.Go("k", func() { n.Add(1) })
		// Inline: done before Go returns.
	}
	if n.Load() != 3 {
		t.Fatalf("ran %d functions before Go returned, want 3", n.Load())
	}
	l.Wait()
}
