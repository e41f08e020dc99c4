package testutil

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cqrskit/cqrskit/es"
)

// Scenario is a given/when/then test of one aggregate command. Build it
// with Given:
//
//	testutil.Given(t, &Account{}, AccountOpened{Owner: "ann"}, Deposited{Amount: 10}).
//		When(func(a *Account) error { return a.Withdraw(4) }).
//		Then(Withdrawn{Amount: 4})
//
//	testutil.Given(t, &Account{}, AccountOpened{Owner: "ann"}).
//		When(func(a *Account) error { return a.Withdraw(4) }).
//		ThenError(ErrInsufficientFunds)
//
// No store is involved: past events go straight to Apply, and the outcome
// is the aggregate's uncommitted events.
type Scenario[T es.Aggregate] struct {
	t   testing.TB
	agg T
	ran bool
	err error
}

// Given starts a scenario: it replays events into agg, a new aggregate, as
// if they had been loaded from its stream (es.Replay), so agg's version is
// len(events). A replay failure fails the test at once.
func Given[T es.Aggregate](t testing.TB, agg T, events ...any) *Scenario[T] {
	t.Helper()
	if err := es.Replay(agg, events...); err != nil {
		t.Fatalf("testutil.Given: %v", err)
	}
	if n := len(agg.Root().Uncommitted()); n > 0 {
		t.Fatalf("testutil.Given: the aggregate already has %d uncommitted events; pass a new one", n)
	}
	return &Scenario[T]{t: t, agg: agg}
}

// When runs command on the aggregate. Call it once, then Then or ThenError.
func (s *Scenario[T]) When(command func(T) error) *Scenario[T] {
	s.t.Helper()
	if s.ran {
		s.t.Fatalf("testutil: When called twice on one scenario")
	}
	s.ran = true
	s.err = command(s.agg)
	return s
}

// Then checks that the command succeeded and raised exactly events, in
// order, compared with reflect.DeepEqual. Then() with no events checks that
// the command raised none.
func (s *Scenario[T]) Then(events ...any) {
	s.t.Helper()
	s.mustHaveRun("Then")
	got := s.agg.Root().Uncommitted()
	if s.err != nil {
		s.t.Errorf("command failed: %v\nwant events:\n%s", s.err, listEvents(events))
		return
	}
	if len(got) == 0 && len(events) == 0 {
		return
	}
	if !reflect.DeepEqual(got, events) {
		s.t.Errorf("raised events differ (-want +got):\n%s", diffEvents(events, got))
	}
}

// ThenError checks that the command failed with an error matching target
// by errors.Is.
func (s *Scenario[T]) ThenError(target error) {
	s.t.Helper()
	s.mustHaveRun("ThenError")
	switch {
	case target == nil:
		s.t.Fatalf("testutil: ThenError(nil); use Then to expect success")
	case s.err == nil:
		s.t.Errorf("command succeeded, want error %q; it raised:\n%s", target, listEvents(s.agg.Root().Uncommitted()))
	case !errors.Is(s.err, target):
		s.t.Errorf("command failed with\n\t%v\nwhich does not match (errors.Is) the wanted\n\t%v", s.err, target)
	}
}

// Aggregate returns the aggregate, for checks on its state after When.
func (s *Scenario[T]) Aggregate() T { return s.agg }

func (s *Scenario[T]) mustHaveRun(step string) {
	s.t.Helper()
	if !s.ran {
		s.t.Fatalf("testutil: %s called before When", step)
	}
}

func listEvents(events []any) string {
	if len(events) == 0 {
		return "\t(none)"
	}
	var b strings.Builder
	for i, e := range events {
		fmt.Fprintf(&b, "\t[%d] %s\n", i, formatEvent(e))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// diffEvents lists want and got side by side: equal events once, differing
// ones as a -/+ pair with the differing fields of same-typed structs.
func diffEvents(want, got []any) string {
	var b strings.Builder
	for i := range max(len(want), len(got)) {
		switch {
		case i >= len(got):
			fmt.Fprintf(&b, "-\t[%d] %s\n", i, formatEvent(want[i]))
		case i >= len(want):
			fmt.Fprintf(&b, "+\t[%d] %s\n", i, formatEvent(got[i]))
		case reflect.DeepEqual(want[i], got[i]):
			fmt.Fprintf(&b, " \t[%d] %s\n", i, formatEvent(got[i]))
		default:
			fmt.Fprintf(&b, "-\t[%d] %s\n+\t[%d] %s\n", i, formatEvent(want[i]), i, formatEvent(got[i]))
			for _, f := range fieldDiffs(want[i], got[i]) {
				fmt.Fprintf(&b, " \t     %s\n", f)
			}
		}
	}
	if len(want) != len(got) {
		fmt.Fprintf(&b, "want %d events, got %d", len(want), len(got))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func formatEvent(e any) string { return fmt.Sprintf("%#v", e) }

// fieldDiffs names the top-level fields that differ between two structs of
// one type; nil for anything else.
func fieldDiffs(want, got any) []string {
	wv, gv := reflect.ValueOf(want), reflect.ValueOf(got)
	if !wv.IsValid() || !gv.IsValid() {
		return nil
	}
	if wv.Type() != gv.Type() {
		return []string{fmt.Sprintf("type: want %s, got %s", wv.Type(), gv.Type())}
	}
	if wv.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := range wv.NumField() {
		f := wv.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		w, g := wv.Field(i).Interface(), gv.Field(i).Interface()
		if !reflect.DeepEqual(w, g) {
			out = append(out, fmt.Sprintf("%s: want %#v, got %#v", f.Name, w, g))
		}
	}
	return out
}
