package memory_test

import (
	"testing"

	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/bustest"
	"github.com/cqrskit/cqrskit/messagebus/memory"
)

func TestContract(t *testing.T) {
	bustest.Run(t, bustest.Features{Dedup: true, OrderedRetry: true, MaxMessageBytes: 1 << 20},
		func(t *testing.T) messagebus.Broker {
			b, err := memory.New(memory.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			return b
		})
}
