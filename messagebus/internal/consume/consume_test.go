package consume

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	for n, base := range map[int]time.Duration{0: 100 * time.Millisecond, 1: 200 * time.Millisecond, 3: 800 * time.Millisecond, 100: 5 * time.Second} {
		for range 100 {
			got := Backoff(n)
			if got < base*8/10 || got > min(base*12/10, 5*time.Second) {
				t.Fatalf("Backoff(%d) = %s, want %s ± 20%% and at most 5s", n, got, base)
			}
		}
	}
}
