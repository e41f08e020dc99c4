package postgres

import (
	"database/sql"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/event"
)

func begin(t testing.TB, s *Store) *sql.Tx {
	t.Helper()
	tx, err := s.DB().BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	return tx
}

func mark(t testing.TB, s *Store, tx *sql.Tx, h string, id uuid.UUID) bool {
	t.Helper()
	fresh, err := s.MarkProcessed(t.Context(), tx, h, id)
	if err != nil {
		t.Fatal(err)
	}
	return fresh
}

func TestMarkProcessed(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := t.Context()
	id := event.NewID()

	tx := begin(t, s)
	if !mark(t, s, tx, "projector", id) {
		t.Fatal("first mark: not fresh")
	}
	if mark(t, s, tx, "projector", id) {
		t.Error("second mark in the same tx: fresh")
	}
	if !mark(t, s, tx, "mailer", id) {
		t.Error("another handler's mark of the same event: not fresh")
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if mark(t, s, begin(t, s), "projector", id) {
		t.Error("mark after commit: fresh")
	}

	// A rolled-back mark leaves nothing behind.
	rolled := event.NewID()
	tx = begin(t, s)
	mark(t, s, tx, "projector", rolled)
	_ = tx.Rollback()
	if !mark(t, s, begin(t, s), "projector", rolled) {
		t.Error("mark after a rolled-back mark: not fresh")
	}

	if _, err := s.MarkProcessed(ctx, nil, "projector", id); err == nil {
		t.Error("MarkProcessed with a nil tx: no error")
	}
	if _, err := s.MarkProcessed(ctx, begin(t, s), "", id); err == nil {
		t.Error("MarkProcessed without a handler name: no error")
	}
}

// Two transactions mark the same event at once: the second waits for the
// first, and exactly one of them sees the event as fresh.
func TestMarkProcessedConcurrent(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	for _, firstCommits := range []bool{true, false} {
		id := event.NewID()
		tx1, tx2 := begin(t, s), begin(t, s)
		if !mark(t, s, tx1, "h", id) {
			t.Fatal("first mark: not fresh")
		}
		second := make(chan bool, 1)
		go func() {
			fresh, err := s.MarkProcessed(t.Context(), tx2, "h", id)
			if err != nil {
				t.Error(err)
			}
			second <- fresh
		}()
		select {
		case <-second:
			t.Fatal("the second mark did not wait for the first transaction")
		case <-time.After(200 * time.Millisecond):
		}
		if firstCommits {
			if err := tx1.Commit(); err != nil {
				t.Fatal(err)
			}
		} else {
			_ = tx1.Rollback()
		}
		if got := <-second; got == firstCommits {
			t.Errorf("first tx committed %v: second mark fresh = %v", firstCommits, got)
		}
		if err := tx2.Commit(); err != nil {
			t.Fatal(err)
		}
	}

	// Many racing transactions: exactly one is fresh.
	id := event.NewID()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fresh int
	)
	for range 8 {
		wg.Go(func() {
			tx, err := s.DB().BeginTx(t.Context(), nil)
			if err != nil {
				t.Error(err)
				return
			}
			ok, err := s.MarkProcessed(t.Context(), tx, "race", id)
			if err != nil {
				_ = tx.Rollback()
				t.Error(err)
				return
			}
			if err := tx.Commit(); err != nil {
				t.Error(err)
				return
			}
			if ok {
				mu.Lock()
				fresh++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if fresh != 1 {
		t.Errorf("%d of 8 racing marks were fresh, want 1", fresh)
	}
}

func TestPruneProcessed(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := t.Context()
	tx := begin(t, s)
	old, recent, other := event.NewID(), event.NewID(), event.NewID()
	mark(t, s, tx, "h", old)
	mark(t, s, tx, "other", other)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// Age the first two marks.
	if _, err := s.DB().Exec(`UPDATE ` + s.Table("processed") + ` SET processed_at = now() - interval '2 hours'`); err != nil {
		t.Fatal(err)
	}
	tx = begin(t, s)
	mark(t, s, tx, "h", recent)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	n, err := s.PruneProcessed(ctx, "h", time.Now().Add(-time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("prune: %d, %v; want 1", n, err)
	}
	tx = begin(t, s)
	if !mark(t, s, tx, "h", old) {
		t.Error("pruned mark still there")
	}
	if mark(t, s, tx, "h", recent) {
		t.Error("recent mark pruned")
	}
	if mark(t, s, tx, "other", other) {
		t.Error("another handler's mark pruned")
	}
	_ = tx.Rollback()

	// More marks than one chunk: 12,000, of which every third is old.
	if _, err := s.DB().Exec(`INSERT INTO ` + s.Table("processed") + ` (handler, event_id, processed_at)
		SELECT 'bulk', gen_random_uuid(), CASE WHEN i % 3 = 0 THEN now() - interval '2 hours' ELSE now() END
		FROM generate_series(1, 12000) AS i`); err != nil {
		t.Fatal(err)
	}
	n, err = s.PruneProcessed(ctx, "bulk", time.Now().Add(-time.Hour))
	if err != nil || n != 4000 {
		t.Fatalf("bulk prune: %d, %v; want 4000", n, err)
	}
	var left int
	if err := s.DB().QueryRow(`SELECT count(*) FROM ` + s.Table("processed") + ` WHERE handler = 'bulk'`).Scan(&left); err != nil || left != 8000 {
		t.Errorf("%d bulk marks left, %v; want 8000", left, err)
	}
	if n, err := s.PruneProcessed(ctx, "nobody", time.Now()); err != nil || n != 0 {
		t.Errorf("prune a handler without marks: %d, %v", n, err)
	}
}

// Concurrent batches sharing events, each listing them in its own order:
// no deadlock, and each event is new to exactly one of them.
func TestMarkProcessedBatchConcurrent(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ids := make([]uuid.UUID, 5000)
	for i := range ids {
		ids[i] = event.NewID()
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fresh = map[uuid.UUID]int{}
	)
	for w := range 6 {
		wg.Go(func() {
			batch := slices.Clone(ids)
			rand.New(rand.NewPCG(uint64(w), 1)).Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
			tx, err := s.DB().BeginTx(t.Context(), nil)
			if err != nil {
				t.Error(err)
				return
			}
			defer func() { _ = tx.Rollback() }()
			got, err := s.MarkProcessedBatch(t.Context(), tx, "h", batch)
			if err != nil {
				t.Error(err)
				return
			}
			time.Sleep(20 * time.Millisecond) // hold the marks a while
			if err := tx.Commit(); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for i, f := range got {
				if f {
					fresh[batch[i]]++
				}
			}
		})
	}
	wg.Wait()
	if len(fresh) != len(ids) {
		t.Errorf("%d of %d events new to some batch", len(fresh), len(ids))
	}
	for id, n := range fresh {
		if n != 1 {
			t.Errorf("event %s new to %d batches", id, n)
		}
	}
}
