package postgres

import (
	"context"
	"testing"

	"github.com/cqrskit/cqrskit/projection/projectiontest"
)

// listeningStore is a Store whose Listener wakes projections: the suite
// looks for projection.Notifier on its event store.
type listeningStore struct {
	*Store
	l *Listener
}

func (s listeningStore) Listen(ctx context.Context) (<-chan struct{}, error) { return s.l.Listen(ctx) }

func TestProjectionContract(t *testing.T) {
	t.Parallel()
	projectiontest.Run(t, func(t testing.TB) projectiontest.Harness {
		s, url := storeWithURL(t, Config{})
		return projectiontest.Harness{Events: listeningStore{s, newListener(t, s, url)}, Checkpoints: s}
	})
}
