package infra_test

import (
	"context"
	"database/sql"
	"sync/atomic"
	"testing"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/sample/infra"
)

// Config.DecorateProducts wraps the function through which every event
// reaches the products read model.
func TestDecorateProducts(t *testing.T) {
	cfg := embedded(t)
	var seen atomic.Int64
	cfg.DecorateProducts = func(fn handler.Func) handler.Func {
		return func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			seen.Add(1)
			return fn(ctx, tx, e)
		}
	}
	s := start(t, cfg)
	id := s.create(t, "Decorated", 100, 1)
	v := s.command(t, id, "price", map[string]any{"price_cents": 200})
	if got := s.product(t, id, v); got.PriceCents != 200 {
		t.Fatalf("read model: %+v, want price 200", got)
	}
	if n := seen.Load(); n < 2 {
		t.Fatalf("the decorator saw %d events, want the 2 the read model applied", n)
	}
}

// Main runs the sample command: bad flags are an error before anything
// starts, and --help is flag.ErrHelp.
func TestMainRejectsBadFlags(t *testing.T) {
	getenv := func(string) string { return "" }
	if err := infra.Main([]string{"--role=boss"}, getenv, nil); err == nil {
		t.Fatal("Main(--role=boss) = nil, want an error")
	}
	if err := infra.Main([]string{"extra"}, getenv, nil); err == nil {
		t.Fatal("Main with a stray argument = nil, want an error")
	}
	called := false
	if err := infra.Main([]string{"--log-level=loud"}, getenv, func(*infra.Config) { called = true }); err == nil || called {
		t.Fatalf("Main with a bad flag = %v, configure called %v; want an error before configure", err, called)
	}
}
