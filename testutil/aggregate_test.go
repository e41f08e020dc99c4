package testutil_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/testutil"
)

type (
	opened    struct{ Owner string }
	deposited struct {
		Amount int64
		Memo   string
	}
	withdrawn struct{ Amount int64 }
)

var errInsufficient = errors.New("insufficient funds")

type account struct {
	es.Base
	open    bool
	balance int64
}

func (a *account) Apply(data any) error {
	switch e := data.(type) {
	case opened:
		a.open = true
	case deposited:
		a.balance += e.Amount
	case withdrawn:
		a.balance -= e.Amount
	default:
		return fmt.Errorf("account: unexpected %T", data)
	}
	return nil
}

func (a *account) withdraw(n int64) error {
	if n > a.balance {
		return fmt.Errorf("withdraw %d: %w", n, errInsufficient)
	}
	return es.Raise(a, withdrawn{Amount: n})
}

func (a *account) depositTwice(n int64) error {
	if err := es.Raise(a, deposited{Amount: n}); err != nil {
		return err
	}
	return es.Raise(a, deposited{Amount: n, Memo: "again"})
}

func TestScenarioPasses(t *testing.T) {
	testutil.Given(t, &account{}, opened{Owner: "ann"}, deposited{Amount: 10}).
		When(func(a *account) error { return a.withdraw(4) }).
		Then(withdrawn{Amount: 4})

	testutil.Given(t, &account{}, opened{Owner: "ann"}).
		When(func(a *account) error { return a.withdraw(4) }).
		ThenError(errInsufficient)

	testutil.Given(t, &account{}).
		When(func(a *account) error { return nil }).
		Then()

	s := testutil.Given(t, &account{}, opened{}, deposited{Amount: 3})
	s.When(func(a *account) error { return a.depositTwice(1) }).
		Then(deposited{Amount: 1}, deposited{Amount: 1, Memo: "again"})
	if a := s.Aggregate(); a.balance != 5 || a.Version() != 2 {
		t.Fatalf("aggregate after the scenario: balance %d version %d", a.balance, a.Version())
	}
}

// fakeTB records failures instead of failing the real test. Fatalf ends
// the goroutine as testing.T does.
type fakeTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
	fatal  bool
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	f.mu.Lock()
	f.fatal = true
	f.mu.Unlock()
	runtime.Goexit()
}

// capture runs fn with a fakeTB in its own goroutine and returns it.
func capture(fn func(tb testing.TB)) *fakeTB {
	f := &fakeTB{}
	var wg sync.WaitGroup
	wg.Go(func() { fn(f) })
	wg.Wait()
	return f
}

func TestScenarioFailures(t *testing.T) {
	tests := []struct {
		name      string
		run       func(tb testing.TB)
		wantFatal bool
		want      []string // substrings of the one failure message
	}{
		{
			name: "different value",
			run: func(tb testing.TB) {
				testutil.Given(tb, &account{}, opened{}, deposited{Amount: 10}).
					When(func(a *account) error { return a.withdraw(4) }).
					Then(withdrawn{Amount: 5})
			},
			want: []string{"(-want +got)", "-\t[0] testutil_test.withdrawn{Amount:5}", "+\t[0] testutil_test.withdrawn{Amount:4}", "Amount: want 5, got 4"},
		},
		{
			name: "one field of two differs",
			run: func(tb testing.TB) {
				testutil.Given(tb, &account{}, opened{}).
					When(func(a *account) error { return a.depositTwice(2) }).
					Then(deposited{Amount: 2}, deposited{Amount: 2, Memo: "once"})
			},
			want: []string{" \t[0] testutil_test.deposited{Amount:2, Memo:\"\"}", `Memo: want "once", got "again"`},
		},
		{
			name: "missing event",
			run: func(tb testing.TB) {
				testutil.Given(tb, &account{}, opened{}).
					When(func(a *account) error { return a.depositTwice(2) }).
					Then(deposited{Amount: 2})
			},
			want: []string{"+\t[1] testutil_test.deposited{Amount:2, Memo:\"again\"}", "want 1 events, got 2"},
		},
		{
			name: "other type",
			run: func(tb testing.TB) {
				testutil.Given(tb, &account{}, opened{}, deposited{Amount: 9}).
					When(func(a *account) error { return a.withdraw(1) }).
					Then(deposited{Amount: 1})
			},
			want: []string{"type: want testutil_test.deposited, got testutil_test.withdrawn"},
		},
		{
			name: "no events expected",
			run: func(tb testing.TB) {
				testutil.Given(tb, &account{}, opened{}, deposited{Amount: 9}).
					When(func(a *account) error { return a.withdraw(1) }).
					Then()
			},
			want: []string{"want 0 events, got 1"},
		},
		{
			name: "command failed, events expected",
			run: func(tb testing.TB) {
				testutil.Given(tb, &account{}, opened{}).
					When(func(a *account) error { return a.withdraw(1) }).
					Then(withdrawn{Amount: 1})
			},
			want: []string{"command failed: withdraw 1: insufficient funds", "[0] testutil_test.withdrawn{Amount:1}"},
		},
		{
			name: "error expected, command succeeded",
			run: func(tb testing.TB) {
				testutil.Given(tb, &account{}, opened{}, deposited{Amount: 5}).
					When(func(a *account) error { return a.withdraw(1) }).
					ThenError(errInsufficient)
			},
			want: []string{`command succeeded, want error "insufficient funds"`, "[0] testutil_test.withdrawn{Amount:1}"},
		},
		{
			name: "other error",
			run: func(tb testing.TB) {
				testutil.Given(tb, &account{}).
					When(func(a *account) error { return errors.New("boom") }).
					ThenError(errInsufficient)
			},
			want: []string{"boom", "does not match (errors.Is)", "insufficient funds"},
		},
		{
			name: "given event Apply rejects",
			run: func(tb testing.TB) {
				testutil.Given(tb, &account{}, opened{}, struct{ Bogus int }{})
			},
			wantFatal: true,
			want:      []string{"testutil.Given", "unexpected struct { Bogus int }", "version 2"},
		},
		{
			name: "Then before When",
			run: func(tb testing.TB) {
				testutil.Given(tb, &account{}).Then()
			},
			wantFatal: true,
			want:      []string{"Then called before When"},
		},
		{
			name: "ThenError(nil)",
			run: func(tb testing.TB) {
				testutil.Given(tb, &account{}).When(func(*account) error { return nil }).ThenError(nil)
			},
			wantFatal: true,
			want:      []string{"use Then"},
		},
		{
			name: "aggregate with uncommitted events",
			run: func(tb testing.TB) {
				a := &account{}
				_ = es.Raise(a, opened{})
				testutil.Given(tb, a)
			},
			wantFatal: true,
			want:      []string{"already has 1 uncommitted events"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := capture(tt.run)
			if len(f.errors) != 1 {
				t.Fatalf("got %d failures, want 1: %q", len(f.errors), f.errors)
			}
			if f.fatal != tt.wantFatal {
				t.Errorf("fatal = %v, want %v", f.fatal, tt.wantFatal)
			}
			for _, w := range tt.want {
				if !strings.Contains(f.errors[0], w) {
					t.Errorf("failure message lacks %q:\n%s", w, f.errors[0])
				}
			}
		})
	}
}

// The failure message as a user sees it.
func TestScenarioFailureMessage(t *testing.T) {
	f := capture(func(tb testing.TB) {
		testutil.Given(tb, &account{}, opened{}).
			When(func(a *account) error { return a.depositTwice(2) }).
			Then(deposited{Amount: 2}, deposited{Amount: 3, Memo: "again"}, withdrawn{Amount: 1})
	})
	want := `raised events differ (-want +got):
 	[0] testutil_test.deposited{Amount:2, Memo:""}
-	[1] testutil_test.deposited{Amount:3, Memo:"again"}
+	[1] testutil_test.deposited{Amount:2, Memo:"again"}
 	     Amount: want 3, got 2
-	[2] testutil_test.withdrawn{Amount:1}
want 3 events, got 2`
	if len(f.errors) != 1 || f.errors[0] != want {
		t.Fatalf("message:\n%s\nwant:\n%s", strings.Join(f.errors, "\n--\n"), want)
	}
}
