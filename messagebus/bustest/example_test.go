package bustest_test

import (
	"fmt"
	"testing"

	"github.com/cqrskit/cqrskit/internal/exampletb"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/bustest"
	"github.com/cqrskit/cqrskit/messagebus/memory"
)

// A broker's test runs the suite with the features the broker claims,
// giving it a fresh broker per subtest. Here exampletb.Run stands in for
// go test, to show that the in-memory broker passes; in a broker's
// package, write the function as TestContract.
func ExampleRun() {
	contract := func(t *testing.T) {
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
	fmt.Println("passed:", exampletb.Run("TestContract", contract))
	// Output:
	// passed: true
}
