package eventtest_test

import (
	"fmt"
	"testing"

	"github.com/cqrskit/cqrskit/event/eventtest"
	"github.com/cqrskit/cqrskit/internal/exampletb"
	"github.com/cqrskit/cqrskit/store/memory"
)

// A store's test runs the suite, giving it a fresh store per subtest. Here
// exampletb.Run stands in for go test, to show that the in-memory store
// passes; in a store's package, write the function as TestContract.
func ExampleRun() {
	contract := func(t *testing.T) {
		eventtest.Run(t, func(t *testing.T) eventtest.Harness {
			s := memory.New()
			return eventtest.Harness{Store: s, Outbox: s}
		})
	}
	fmt.Println("passed:", exampletb.Run("TestContract", contract))
	// Output:
	// passed: true
}
