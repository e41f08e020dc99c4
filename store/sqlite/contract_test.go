package sqlite_test

import (
	"testing"

	"github.com/cqrskit/cqrskit/event/eventtest"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

func TestContract(t *testing.T) {
	eventtest.Run(t, func(t *testing.T) eventtest.Harness {
		s := newStore(t, sqlite.Config{})
		return eventtest.Harness{Store: s, Outbox: s}
	})
}
