package handlertest_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/cqrskit/cqrskit/handler/handlertest"
	"github.com/cqrskit/cqrskit/internal/exampletb"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// A store's test runs the suite, giving it a fresh, migrated store per
// subtest. Here exampletb.Run stands in for go test, to show that the
// SQLite store passes; in a store's package, write the function as
// TestHandlerContract.
func ExampleRun() {
	contract := func(t *testing.T) {
		handlertest.Run(t, func(t testing.TB) handlertest.Harness {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"),
				sqlite.Config{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			if err := s.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			return handlertest.Harness{Store: s}
		})
	}
	fmt.Println("passed:", exampletb.Run("TestHandlerContract", contract))
	// Output:
	// passed: true
}
