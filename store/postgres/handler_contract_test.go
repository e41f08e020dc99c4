package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/handler/handlertest"
)

func TestHandlerContract(t *testing.T) {
	t.Parallel()
	handlertest.Run(t, func(t testing.TB) handlertest.Harness {
		return handlertest.Harness{Store: newStore(t, Config{})}
	})
}

func TestHandlerStoreNotMigrated(t *testing.T) {
	t.Parallel()
	s, err := New(newStore(t, Config{}).DB(), Config{TablePrefix: "missing_"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.ListDeadLetters(ctx, "", 0, 1); !errors.Is(err, ErrNotMigrated) {
		t.Errorf("ListDeadLetters: %v", err)
	}
	if _, err := s.PruneProcessed(ctx, "h", time.Now()); !errors.Is(err, ErrNotMigrated) {
		t.Errorf("PruneProcessed: %v", err)
	}
}
