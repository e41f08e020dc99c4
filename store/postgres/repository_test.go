package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
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

// UpdateTx takes its snapshot in the caller's transaction: stored on
// commit, gone on rollback.
func TestUpdateTxWithSnapshotsWritesThemInTheTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := newStore(t, Config{})
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
	update := func() (*counter, *sql.Tx) {
		t.Helper()
		tx, err := store.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := repo.UpdateTx(ctx, tx, "c", func(c *counter) error { return es.Raise(c, added{By: 1}) })
		if err != nil {
			_ = tx.Rollback()
			t.Fatal(err)
		}
		return got, tx
	}
	for v := int64(2); v <= 5; v++ {
		got, tx := update()
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		snap, ok, err := store.LoadSnapshot(ctx, "counter-c")
		if wantAt := v / 2 * 2; err != nil || !ok || snap.Version != wantAt || got.N != v {
			t.Fatalf("after UpdateTx to version %d (n %d): snapshot at %d (found %v, %v), want one at %d", v, got.N, snap.Version, ok, err, wantAt)
		}
	}
	_, tx := update() // to version 6: a snapshot is due
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if snap, _, _ := store.LoadSnapshot(ctx, "counter-c"); snap.Version != 4 {
		t.Fatalf("snapshot at %d after a rolled-back UpdateTx, want 4", snap.Version)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("warnings logged:\n%s", logs)
	}
}

// A failed snapshot inside the caller's transaction must not abort it: the
// events still commit.
func TestSaveSnapshotTxFailureLeavesTxUsable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, Config{})
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := s.AppendTx(ctx, tx, "product-1", event.NoStream, evs(1)); err != nil {
		t.Fatal(err)
	}
	// PostgreSQL text refuses a NUL byte: the insert fails.
	err = s.SaveSnapshotTx(ctx, tx, es.Snapshot{StreamID: "product-\x00", Version: 1, Data: []byte("{}")})
	if err == nil {
		t.Fatal("SaveSnapshotTx with a NUL in the stream ID succeeded")
	}
	if err := s.SaveSnapshotTx(ctx, tx, es.Snapshot{StreamID: "product-1", Version: 1, Data: []byte("{}")}); err != nil {
		t.Fatalf("SaveSnapshotTx after a failed one: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("commit after a failed snapshot: %v", err)
	}
	if got, _ := load(t, s, "product-1", 1); len(got) != 1 {
		t.Fatalf("stream holds %d events, want 1", len(got))
	}
	if snap, ok, _ := s.LoadSnapshot(ctx, "product-1"); !ok || snap.Version != 1 {
		t.Fatalf("snapshot %v at %d, want one at 1", ok, snap.Version)
	}
	if err := s.SaveSnapshotTx(ctx, nil, es.Snapshot{StreamID: "p", Version: 1, Data: []byte("{}")}); !errors.Is(err, event.ErrInvalidEvent) {
		t.Fatalf("SaveSnapshotTx(nil tx) = %v, want a validation error", err)
	}
}

// Two serializable transactions append to one stream: the second cannot
// serialize (SQLSTATE 40001). AppendTx must say so with a retryable error,
// and running the transaction again succeeds.
func TestAppendTxSerializationFailureIsRetryable(t *testing.T) {
	for _, iso := range []sql.IsolationLevel{sql.LevelRepeatableRead, sql.LevelSerializable} {
		t.Run(iso.String(), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := newStore(t, Config{})
			const st = "product-ser"
			if _, err := s.Append(ctx, st, event.NoStream, evs(1)); err != nil {
				t.Fatal(err)
			}
			opts := &sql.TxOptions{Isolation: iso}
			tx1, err := s.DB().BeginTx(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer tx1.Rollback()
			tx2, err := s.DB().BeginTx(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer tx2.Rollback()
			// Both read the stream, as a command handler does, so both
			// snapshots predate the first commit.
			for _, tx := range []*sql.Tx{tx1, tx2} {
				var v int64
				if err := tx.QueryRowContext(ctx, s.q.streamVersion, st).Scan(&v); err != nil || v != 1 {
					t.Fatalf("read version: %d, %v", v, err)
				}
			}
			if _, err := s.AppendTx(ctx, tx1, st, event.Exactly(1), evs(1)); err != nil {
				t.Fatal(err)
			}
			if err := tx1.Commit(); err != nil {
				t.Fatal(err)
			}
			_, err = s.AppendTx(ctx, tx2, st, event.Exactly(1), evs(1))
			if !errors.Is(err, event.ErrRetryable) || !strings.Contains(err.Error(), "40001") || !strings.Contains(err.Error(), "run the whole transaction again") {
				t.Fatalf("AppendTx in the losing %s transaction: %v; want event.ErrRetryable naming SQLSTATE 40001 and what to do", iso, err)
			}
			if errors.Is(err, event.ErrConcurrencyConflict) {
				t.Errorf("a serialization failure is not a version conflict: %v", err)
			}
			if err := tx2.Rollback(); err != nil {
				t.Fatal(err)
			}
			// The retry sees the stream as it is now.
			tx3, err := s.DB().BeginTx(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer tx3.Rollback()
			if res, err := s.AppendTx(ctx, tx3, st, event.Exactly(2), evs(1)); err != nil || res.Version != 3 {
				t.Fatalf("retried AppendTx: %+v, %v", res, err)
			}
			if err := tx3.Commit(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
