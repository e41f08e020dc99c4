package sqlite_test

import (
	"os"
	"strconv"
	"testing"

	"github.com/cqrskit/cqrskit/projection/projectiontest"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

func TestProjectionContract(t *testing.T) {
	projectiontest.Run(t, func(t testing.TB) projectiontest.Harness {
		s := newStore(t, sqlite.Config{})
		return projectiontest.Harness{Events: s, Checkpoints: s}
	})
}

// BenchmarkProjectionRebuild rebuilds a projection over 100,000 events, or
// CQRSKIT_BENCH_EVENTS (1000000 for the design's target).
func BenchmarkProjectionRebuild(b *testing.B) {
	events := 100_000
	if v := os.Getenv("CQRSKIT_BENCH_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("CQRSKIT_BENCH_EVENTS=%q: want a positive integer", v)
		}
		events = n
	}
	projectiontest.BenchRebuild(b, func(t testing.TB) projectiontest.Harness {
		s := newStore(t, sqlite.Config{})
		return projectiontest.Harness{Events: s, Checkpoints: s}
	}, events)
}
