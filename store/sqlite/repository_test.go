package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// counter is a minimal aggregate for repository tests.
type counter struct {
	es.Base
	N int64
}

type added struct{ By int64 }

func (c *counter) Apply(data any) error {
	switch e := data.(type) {
	case added:
		c.N += e.By
		return nil
	}
	return fmt.Errorf("counter: unexpected event %T", data)
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// UpdateTx with snapshots used to save the snapshot on another connection
// while the caller's transaction held SQLite's write lock: the save waited
// for the busy timeout (30 s by default), failed, and stored nothing. The
// database here has a 200 ms busy timeout, so the old code logs the
// failure quickly instead of stalling the test.
func TestUpdateTxWithSnapshotsWritesThemInTheTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(200)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "events.db")+"?"+q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	store, err := sqlite.New(db, sqlite.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	reg := event.NewRegistry(event.JSON{})
	event.MustRegister[added](reg, "counter.added")
	logs := &syncBuffer{}
	repo, err := es.NewRepository(store, reg, es.RepositoryConfig[*counter]{
		New: func() *counter { return &counter{} }, StreamType: "counter",
		Snapshots: store, SnapshotPolicy: es.EveryN(2),
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Create(ctx, "c", func(c *counter) error { return es.Raise(c, added{By: 1}) }); err != nil {
		t.Fatal(err)
	}
	for v := int64(2); v <= 5; v++ {
		tx, err := store.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := repo.UpdateTx(ctx, tx, "c", func(c *counter) error { return es.Raise(c, added{By: 1}) })
		if err != nil {
			_ = tx.Rollback()
			t.Fatalf("UpdateTx to version %d: %v", v, err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if got.Version() != v || got.N != v {
			t.Fatalf("UpdateTx returned version %d, n %d; want %d", got.Version(), got.N, v)
		}
		snap, ok, err := store.LoadSnapshot(ctx, "counter-c")
		if wantAt := v / 2 * 2; err != nil || !ok || snap.Version != wantAt {
			t.Errorf("after UpdateTx to version %d: snapshot at %d (found %v, %v), want one at %d", v, snap.Version, ok, err, wantAt)
		}
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("warnings logged (a snapshot written on another connection waits for the caller's write lock):\n%s", logs)
	}

	// A snapshot rolls back with its transaction.
	tx, err := store.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.UpdateTx(ctx, tx, "c", func(c *counter) error { return es.Raise(c, added{By: 1}) }); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if snap, _, _ := store.LoadSnapshot(ctx, "counter-c"); snap.Version != 4 {
		t.Fatalf("snapshot at %d after a rolled-back UpdateTx, want 4", snap.Version)
	}
	got, err := repo.Load(ctx, "c")
	if err != nil || got.N != 5 {
		t.Fatalf("Load = n %d, %v; want 5", got.N, err)
	}
}

func TestSaveSnapshotTxNilTx(t *testing.T) {
	t.Parallel()
	s := newStore(t, sqlite.Config{})
	err := s.SaveSnapshotTx(context.Background(), nil, es.Snapshot{StreamID: "p-1", Version: 1, Data: []byte("{}")})
	var ve *event.ValidationError
	if !errors.As(err, &ve) || ve.Field != "tx" {
		t.Fatalf("SaveSnapshotTx(nil tx) = %v, want a validation error on tx", err)
	}
}
