package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/outbox"
	"github.com/cqrskit/cqrskit/testutil/pgtest"
)

// storeWithURL returns a migrated store on a fresh database and the
// database's URL, for Listener.
func storeWithURL(t testing.TB, cfg Config) (*Store, string) {
	t.Helper()
	pg := pgtest.New(t)
	s, err := New(pg.DB(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, pg.URL
}

func newLeader(t testing.TB, s *Store, cfg LeaderConfig) *Leader {
	t.Helper()
	l, err := s.Leader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustAcquire(t testing.TB, l *Leader) *lease {
	t.Helper()
	got, err := l.TryAcquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got == nil {
		t.Fatal("TryAcquire: not acquired")
	}
	return got.(*lease)
}

func mustNotAcquire(t testing.TB, l *Leader) {
	t.Helper()
	got, err := l.TryAcquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got != nil {
		t.Fatal("TryAcquire: acquired while another session holds the lock")
	}
}

// terminate ends a backend, as an operator or a failing network would.
func terminate(t testing.TB, s *Store, pid int) {
	t.Helper()
	var ok bool
	if err := s.DB().QueryRow(`SELECT pg_terminate_backend($1)`, pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate backend %d: %v, %v", pid, ok, err)
	}
}

// eventually retries f every 20ms for up to 15s.
func eventually(t testing.TB, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLeaderOneHolderAtATime(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := t.Context()
	a, b := newLeader(t, s, LeaderConfig{}), newLeader(t, s, LeaderConfig{})

	la := mustAcquire(t, a)
	mustNotAcquire(t, b)
	mustNotAcquire(t, a) // a second try takes a second session
	if n := s.DB().Stats().InUse; n != 1 {
		t.Errorf("%d connections in use while one lease is held, want 1 (failed tries return theirs)", n)
	}
	if err := la.Keep(ctx); err != nil {
		t.Fatalf("Keep: %v", err)
	}
	// The lease's session has the server-side keepalive set.
	var idle string
	if err := la.conn.QueryRowContext(ctx, `SHOW tcp_keepalives_idle`).Scan(&idle); err != nil || idle != "10" {
		t.Errorf("lease session's tcp_keepalives_idle = %q, %v; want 10", idle, err)
	}

	if err := la.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := la.Release(ctx); err != nil {
		t.Errorf("second Release: %v", err)
	}
	if err := la.Keep(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("Keep after Release: %v", err)
	}
	if n := s.DB().Stats().InUse; n != 0 {
		t.Errorf("%d connections in use after Release", n)
	}
	// The session was closed, not pooled with its settings.
	eventually(t, "the released session to end", func() bool {
		var n int
		_ = s.DB().QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, la.pid).Scan(&n)
		return n == 0
	})

	lb := mustAcquire(t, b)
	mustNotAcquire(t, a)
	if err := lb.Release(ctx); err != nil {
		t.Fatal(err)
	}
	mustAcquire(t, a)
}

func TestLeaderKeyedByOutboxTable(t *testing.T) {
	t.Parallel()
	pg := pgtest.New(t)
	var leaders []*Leader
	for _, cfg := range []Config{{}, {TablePrefix: "other_"}, {Schema: "app"}} {
		s, err := New(pg.DB(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		leaders = append(leaders, newLeader(t, s, LeaderConfig{Keepalive: -1}))
	}
	// Three outboxes in one database: three independent locks.
	for _, l := range leaders {
		le := mustAcquire(t, l)
		t.Cleanup(func() { _ = le.Release(context.Background()) })
	}
	for _, l := range leaders {
		mustNotAcquire(t, l)
	}

	unmigrated, err := New(pg.DB(), Config{TablePrefix: "missing_"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = newLeader(t, unmigrated, LeaderConfig{}).TryAcquire(t.Context())
	if !errors.Is(err, ErrNotMigrated) {
		t.Errorf("TryAcquire without tables: %v, want ErrNotMigrated", err)
	}
}

func TestLeaderLostWhenSessionDies(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := t.Context()
	a, b := newLeader(t, s, LeaderConfig{}), newLeader(t, s, LeaderConfig{})
	la := mustAcquire(t, a)
	mustNotAcquire(t, b)

	terminate(t, s, la.pid)
	var keepErr error
	eventually(t, "Keep to report the lost session", func() bool {
		keepErr = la.Keep(ctx)
		return keepErr != nil
	})
	if !errors.Is(keepErr, ErrLeaseLost) {
		t.Errorf("Keep: %v, want ErrLeaseLost", keepErr)
	}
	t.Logf("Keep after pg_terminate_backend: %v", keepErr)
	eventually(t, "the standby to acquire", func() bool {
		l, err := b.TryAcquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return l != nil
	})
	if err := la.Release(ctx); err != nil {
		t.Errorf("Release of a lost lease: %v", err)
	}
	if n := s.DB().Stats().InUse; n != 1 {
		t.Errorf("%d connections in use, want the new leader's 1", n)
	}
}

func TestLeaderConfig(t *testing.T) {
	t.Parallel()
	s, err := New(dummyDB, Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  LeaderConfig
		ok   bool
	}{
		{"zero", LeaderConfig{}, true},
		{"server keepalive", LeaderConfig{Keepalive: -1}, true},
		{"explicit", LeaderConfig{KeepTimeout: time.Second, Keepalive: 3 * time.Second}, true},
		{"negative keep timeout", LeaderConfig{KeepTimeout: -time.Second}, false},
		{"sub-second keepalive", LeaderConfig{Keepalive: 500 * time.Millisecond}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Leader(tc.cfg)
			if (err == nil) != tc.ok {
				t.Errorf("Leader(%+v): %v", tc.cfg, err)
			}
		})
	}
}

var _ outbox.Lease = (*lease)(nil)
