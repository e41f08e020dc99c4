// Package exampletb gives runnable examples the testing.TB that the test
// helpers (testutil, pgtest, natstest) take, since an Example function has
// none of its own. It is for this module's examples only: in a test, pass
// the test's *testing.T.
//
// A failure or a skip panics, so an example whose service is missing fails
// (the same rule as the tests under CQRSKIT_REQUIRE_*) and never passes
// silently; Errorf prints the message, so an example can show what a
// failing assertion reports.
package exampletb

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"
)

// T is a testing.TB for one example. Call Done, usually deferred, to run
// the cleanups in reverse order.
type T struct {
	testing.TB // nil: methods not listed here are not supported

	name string

	mu       sync.Mutex
	failed   bool
	cleanups []func()
	dirs     []string
	ctx      context.Context
	cancel   context.CancelFunc
}

// New returns a T named name (the name pgtest derives a database name from).
func New(name string) *T {
	ctx, cancel := context.WithCancel(context.Background())
	return &T{name: name, ctx: ctx, cancel: cancel}
}

// Done runs the cleanups, last registered first, and removes the temporary
// directories.
func (t *T) Done() {
	t.cancel()
	t.mu.Lock()
	cleanups := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	for _, d := range t.dirs {
		_ = os.RemoveAll(d)
	}
}

func (t *T) Name() string                 { return t.name }
func (t *T) Helper()                      {}
func (t *T) Context() context.Context     { return t.ctx }
func (t *T) Log(args ...any)              {}
func (t *T) Logf(format string, a ...any) {}

func (t *T) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *T) TempDir() string {
	d, err := os.MkdirTemp("", "example")
	if err != nil {
		t.Fatalf("TempDir: %v", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dirs = append(t.dirs, d)
	return d
}

func (t *T) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

// Errorf prints the failure and marks t failed.
func (t *T) Errorf(format string, args ...any) {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	fmt.Printf(format+"\n", args...)
}

func (t *T) Error(args ...any) { t.Errorf("%s", fmt.Sprint(args...)) }

// Fatalf panics: the example fails.
func (t *T) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *T) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }

// Skipf panics too: an example that needs a missing service fails.
func (t *T) Skipf(format string, args ...any) {
	panic("skip is a failure in an example: " + fmt.Sprintf(format, args...))
}
func (t *T) Skip(args ...any) { panic("skip is a failure in an example: " + fmt.Sprint(args...)) }

// Run runs f as the test name, as go test would, and reports whether it
// passed: for examples of the contract suites, which take a *testing.T.
// Failures print as in go test; -test.v is turned off meanwhile so that a
// verbose run leaves the example's output unchanged.
func Run(name string, f func(t *testing.T)) bool {
	if v := flag.Lookup("test.v"); v != nil {
		old := v.Value.String()
		_ = v.Value.Set("false")
		defer func() { _ = v.Value.Set(old) }()
	}
	all := func(pat, str string) (bool, error) { return true, nil }
	return testing.RunTests(all, []testing.InternalTest{{Name: name, F: f}})
}
