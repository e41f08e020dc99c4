package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/event"
)

func newListener(t testing.TB, s *Store, url string) *Listener {
	t.Helper()
	l, err := s.Listener(url)
	if err != nil {
		t.Fatal(err)
	}
	// Every Listen context ends with the test; wait for the connection to
	// close before the database is dropped.
	t.Cleanup(l.loops.Wait)
	return l
}

// listening waits until l has a listening connection and returns its
// backend pid.
func listening(t testing.TB, l *Listener) uint32 {
	t.Helper()
	var pid uint32
	eventually(t, "the listener to connect", func() bool {
		pid = l.pid.Load()
		return pid != 0
	})
	return pid
}

// woken waits up to 10s for a value on c.
func woken(t testing.TB, c <-chan struct{}, after string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("no wake-up within 10s after %s", after)
	}
}

// drain empties c's pending wake-up, if any.
func drain(c <-chan struct{}) {
	select {
	case <-c:
	default:
	}
}

func TestListenerWakesOnAppend(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{{}, {Schema: "app", TablePrefix: "x_"}} {
		t.Run(cfg.Schema, func(t *testing.T) {
			t.Parallel()
			s, url := storeWithURL(t, cfg)
			l := newListener(t, s, url)
			c, err := l.Listen(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			listening(t, l)
			woken(t, c, "connecting") // rows may have committed before LISTEN
			drain(c)

			if _, err := s.Append(t.Context(), "a", event.NoStream, evs(2)); err != nil {
				t.Fatal(err)
			}
			woken(t, c, "an append")

			// Wake-ups coalesce: many appends with nobody receiving leave
			// one pending value, and the listener does not block.
			for i := range 5 {
				if _, err := s.Append(t.Context(), "a", event.Exactly(int64(2+i)), evs(1)); err != nil {
					t.Fatal(err)
				}
			}
			woken(t, c, "a burst of appends")
		})
	}
}

func TestListenerReconnects(t *testing.T) {
	t.Parallel()
	s, url := storeWithURL(t, Config{})
	l := newListener(t, s, url)
	c, err := l.Listen(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	first := listening(t, l)
	drain(c)

	terminate(t, s, int(first))
	var second uint32
	eventually(t, "the listener to reconnect", func() bool {
		second = l.pid.Load()
		return second != 0 && second != first
	})
	// Notifications sent while it was away are lost, so it wakes
	// subscribers once it listens again.
	woken(t, c, "reconnecting")
	drain(c)

	if _, err := s.Append(t.Context(), "after-reconnect", event.NoStream, evs(1)); err != nil {
		t.Fatal(err)
	}
	woken(t, c, "an append on the new connection")
}

func TestListenerSharedAndStopped(t *testing.T) {
	t.Parallel()
	s, url := storeWithURL(t, Config{})
	l := newListener(t, s, url)
	ctx1, cancel1 := context.WithCancel(t.Context())
	ctx2, cancel2 := context.WithCancel(t.Context())
	defer cancel2()
	c1, err := l.Listen(ctx1)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := l.Listen(ctx2)
	if err != nil {
		t.Fatal(err)
	}
	pid := listening(t, l)
	var conns int
	if err := s.DB().QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'cqrskit outbox listener'`).Scan(&conns); err != nil {
		t.Fatal(err)
	}
	if conns != 1 {
		t.Errorf("%d listening connections for two Listen calls, want 1", conns)
	}
	drain(c1)
	drain(c2)
	if _, err := s.Append(t.Context(), "a", event.NoStream, evs(1)); err != nil {
		t.Fatal(err)
	}
	woken(t, c1, "an append (first subscriber)")
	woken(t, c2, "an append (second subscriber)")

	// The first subscriber leaves; the second keeps the connection.
	cancel1()
	time.Sleep(100 * time.Millisecond)
	if got := l.pid.Load(); got != pid {
		t.Fatalf("listening pid %d after one of two subscribers left, want %d", got, pid)
	}
	drain(c2)
	if _, err := s.Append(t.Context(), "b", event.NoStream, evs(1)); err != nil {
		t.Fatal(err)
	}
	woken(t, c2, "an append after the first subscriber left")

	// The last one leaves: the connection closes.
	cancel2()
	l.loops.Wait()
	if got := l.pid.Load(); got != 0 {
		t.Errorf("pid %d after every subscriber left", got)
	}
	eventually(t, "the listening session to end", func() bool {
		var n int
		_ = s.DB().QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&n)
		return n == 0
	})

	// Listening again opens a new connection.
	c3, err := l.Listen(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	listening(t, l)
	drain(c3)
	if _, err := s.Append(t.Context(), "c", event.NoStream, evs(1)); err != nil {
		t.Fatal(err)
	}
	woken(t, c3, "an append after listening again")

	done, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.Listen(done); err == nil {
		t.Error("Listen with an ended context: no error")
	}
}

func TestListenerBadConnString(t *testing.T) {
	t.Parallel()
	s, err := New(dummyDB, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Listener("postgres://host:notaport/db"); err == nil {
		t.Error("Listener accepted an unparsable connection string")
	}
}
