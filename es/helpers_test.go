package es_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store/memory"
)

// bundle is what setup returns: a fresh store, registry, repository and
// the repository's captured log.
type bundle struct {
	store *memory.Store
	reg   *event.Registry
	repo  *es.Repository[*Account]
	logs  *logBuffer
}

// setup returns a repository over a fresh memory store. edit adjusts the
// config before the repository is built.
func setup(t testing.TB, edit ...func(*bundle, *es.RepositoryConfig[*Account])) bundle {
	t.Helper()
	b := bundle{store: memory.New(), reg: newRegistry(), logs: &logBuffer{}}
	cfg := es.RepositoryConfig[*Account]{
		New:        func() *Account { return &Account{} },
		StreamType: "account",
		Logger:     slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range edit {
		f(&b, &cfg)
	}
	repo, err := es.NewRepository(b.store, b.reg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.repo = repo
	return b
}

// withSnapshots stores snapshots in the bundle's store every n versions.
func withSnapshots(n int64) func(*bundle, *es.RepositoryConfig[*Account]) {
	return func(b *bundle, c *es.RepositoryConfig[*Account]) {
		c.Snapshots = b.store
		c.SnapshotPolicy = es.EveryN(n)
	}
}

// open saves a new account with id and then deposits 1 per save, deposits
// times, one event per save.
func open(t testing.TB, repo *es.Repository[*Account], id string, deposits int) {
	t.Helper()
	ctx := context.Background()
	acct := &Account{}
	must(t, acct.Open(id, "owner-"+id))
	must(t, repo.Save(ctx, acct))
	for range deposits {
		must(t, acct.Deposit(1))
		must(t, repo.Save(ctx, acct))
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) requireWarning(t testing.TB, substr string) {
	t.Helper()
	for line := range strings.Lines(l.String()) {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, substr) {
			return
		}
	}
	t.Fatalf("no warning containing %q in log:\n%s", substr, l.String())
}

// conflictStore makes the first n appends fail with a concurrency conflict,
// as if another writer had won each time.
type conflictStore struct {
	event.Store
	n        atomic.Int64
	appends  atomic.Int64
	conflict atomic.Int64
}

func (s *conflictStore) Append(ctx context.Context, stream string, expected event.ExpectedVersion, events []event.Event) (event.AppendResult, error) {
	s.appends.Add(1)
	if s.n.Add(-1) >= 0 {
		s.conflict.Add(1)
		v, _ := expected.Exact()
		return event.AppendResult{}, &event.ConcurrencyError{Stream: stream, Expected: expected, Actual: v + 1}
	}
	return s.Store.Append(ctx, stream, expected, events)
}

// failingSnapshots is a snapshot store whose reads or writes fail.
type failingSnapshots struct {
	es.SnapshotStore
	failLoad, failSave bool
}

var errSnapshotStore = errors.New("snapshot store is down")

func (f failingSnapshots) SaveSnapshot(ctx context.Context, s es.Snapshot) error {
	if f.failSave {
		return errSnapshotStore
	}
	return f.SnapshotStore.SaveSnapshot(ctx, s)
}

func (f failingSnapshots) LoadSnapshot(ctx context.Context, stream string) (es.Snapshot, bool, error) {
	if f.failLoad {
		return es.Snapshot{}, false, errSnapshotStore
	}
	return f.SnapshotStore.LoadSnapshot(ctx, stream)
}

func newTestLogger(w *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
