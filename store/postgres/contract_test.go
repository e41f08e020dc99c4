package postgres

import (
	"testing"

	"github.com/cqrskit/cqrskit/event/eventtest"
)

func TestContract(t *testing.T) {
	t.Parallel()
	eventtest.Run(t, func(t *testing.T) eventtest.Harness {
		s := newStore(t, Config{})
		return eventtest.Harness{Store: s, Outbox: s, OutOfOrderCommits: true}
	})
}
