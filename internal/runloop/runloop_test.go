package runloop

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// countingBackOff waits a fixed time and counts its calls.
type countingBackOff struct {
	wait         time.Duration
	next, resets atomic.Int32
}

func (b *countingBackOff) NextBackOff() time.Duration { b.next.Add(1); return b.wait }
func (b *countingBackOff) Reset()                     { b.resets.Add(1) }

func run(t *testing.T, cfg Config) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	return func() error { cancel(); return <-done }
}

func TestRunStepsAgainWhileMore(t *testing.T) {
	var steps atomic.Int32
	stop := run(t, Config{Poll: time.Hour, BackOff: &countingBackOff{wait: time.Hour},
		Step: func(context.Context) (bool, error) { return steps.Add(1) < 5, nil }})
	waitFor(t, func() bool { return steps.Load() >= 5 })
	time.Sleep(20 * time.Millisecond)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
	if n := steps.Load(); n != 5 {
		t.Errorf("%d steps, want 5 (four with more, then idle for an hour)", n)
	}
}

func TestRunWakesAndPolls(t *testing.T) {
	wake := make(chan struct{})
	var steps atomic.Int32
	stop := run(t, Config{Poll: time.Hour, Wake: wake, BackOff: &countingBackOff{wait: time.Hour},
		Step: func(context.Context) (bool, error) { steps.Add(1); return false, nil }})
	defer stop()
	waitFor(t, func() bool { return steps.Load() == 1 })
	wake <- struct{}{}
	waitFor(t, func() bool { return steps.Load() == 2 })

	var polled atomic.Int32
	stopPoll := run(t, Config{Poll: 5 * time.Millisecond, BackOff: &countingBackOff{wait: time.Hour},
		Step: func(context.Context) (bool, error) { polled.Add(1); return false, nil }})
	defer stopPoll()
	waitFor(t, func() bool { return polled.Load() >= 3 })
}

func TestRunBacksOffAfterFailure(t *testing.T) {
	wake := make(chan struct{}, 1)
	bo := &countingBackOff{wait: 50 * time.Millisecond}
	var steps atomic.Int32
	var reported atomic.Int32
	fail := errors.New("database down")
	stop := run(t, Config{Poll: time.Hour, Wake: wake, BackOff: bo,
		OnError: func(_ context.Context, err error, retryIn time.Duration) {
			if !errors.Is(err, fail) || retryIn != 50*time.Millisecond {
				t.Errorf("OnError(%v, %s)", err, retryIn)
			}
			reported.Add(1)
		},
		Step: func(context.Context) (bool, error) {
			if steps.Add(1) == 1 {
				return false, fail
			}
			return false, nil
		}})
	defer stop()
	waitFor(t, func() bool { return reported.Load() == 1 })
	start := time.Now()
	wake <- struct{}{} // must not cut the backoff short
	waitFor(t, func() bool { return steps.Load() == 2 })
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("retried after %s; a wake-up cut the 50ms backoff short", d)
	}
	if bo.next.Load() != 1 {
		t.Errorf("NextBackOff called %d times, want 1", bo.next.Load())
	}
	waitFor(t, func() bool { return bo.resets.Load() >= 2 }) // at start and after the success
}

func TestRunFinalError(t *testing.T) {
	lost := errors.New("lease lost")
	err := Run(t.Context(), Config{Poll: time.Hour, BackOff: &countingBackOff{},
		Final: func(err error) bool { return errors.Is(err, lost) },
		Step:  func(context.Context) (bool, error) { return false, lost }})
	if !errors.Is(err, lost) {
		t.Errorf("Run returned %v, want the final error", err)
	}
}

func TestNth(t *testing.T) {
	b := backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, MaxInterval: time.Second, Multiplier: 2}
	for n, want := range map[int]time.Duration{0: 100 * time.Millisecond, 1: 100 * time.Millisecond, 2: 200 * time.Millisecond,
		4: 800 * time.Millisecond, 5: time.Second, 1_000_000: time.Second} {
		if got := Nth(b, n); got != want {
			t.Errorf("Nth(%d) = %s, want %s", n, got, want)
		}
	}
	b.RandomizationFactor = 0.5
	for range 1000 {
		if got := Nth(b, 2); got < 100*time.Millisecond || got > 300*time.Millisecond {
			t.Fatalf("Nth(2) with jitter 0.5 = %s, want within [100ms, 300ms]", got)
		}
		if got := Nth(b, 10); got < 500*time.Millisecond || got > time.Second {
			t.Fatalf("Nth(10) with jitter 0.5 = %s, want within [500ms, 1s]", got)
		}
	}
	one := backoff.ExponentialBackOff{InitialInterval: time.Millisecond, MaxInterval: time.Second, Multiplier: 1}
	if got := Nth(one, 1<<40); got != time.Millisecond {
		t.Errorf("Nth with multiplier 1 = %s, want 1ms", got)
	}
}

func TestNew(t *testing.T) {
	b := New(100*time.Millisecond, 10*time.Second)
	for range 100 {
		b.Reset()
		if d := b.NextBackOff(); d < 80*time.Millisecond || d > 121*time.Millisecond {
			t.Fatalf("first wait %s, want 100ms ± 20%%", d)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
