package postgres

import (
	"os"
	"strconv"
	"testing"

	"github.com/cqrskit/cqrskit/handler/handlertest"
	"github.com/cqrskit/cqrskit/projection/projectiontest"
)

// BenchmarkHandler measures the idempotent consumer into a PostgreSQL read
// model, one event per transaction and batched, beside raw database/sql
// loops doing the dedupe insert + update at 1 and 100 per transaction:
//
//	CQRSKIT_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable \
//	  go test -run '^$' -bench Handler -benchtime 5000x ./store/postgres
func BenchmarkHandler(b *testing.B) {
	handlertest.Bench(b, func(t testing.TB) handlertest.Harness {
		return handlertest.Harness{Store: newStore(t, Config{})}
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
		s := newStore(t, Config{})
		return projectiontest.Harness{Events: s, Checkpoints: s}
	}, events)
}
