package handlertest

import (
	"database/sql"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
)

// Run runs the suite. newHarness must return a fresh, empty, migrated
// store for each call; the suite calls it once per subtest.
func Run(t *testing.T, newHarness func(t testing.TB) Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"MarkProcessed", testMarkProcessed},
		{"MarkProcessedBatch", testMarkProcessedBatch},
		{"DeadLetterStore", testDeadLetterStore},
		{"PruneProcessedStore", testPruneProcessedStore},
		{"DuplicateSequential", testDuplicateSequential},
		{"DuplicateConcurrent", testDuplicateConcurrent},
		{"DuplicateThroughBroker", testDuplicateThroughBroker},
		{"FailTwiceThenSucceed", testFailTwiceThenSucceed},
		{"RetryThroughBroker", testRetryThroughBroker},
		{"PoisonMessage", testPoisonMessage},
		{"PermanentError", testPermanentError},
		{"NotAnEvent", testNotAnEvent},
		{"UndecodablePayload", testUndecodablePayload},
		{"Panic", testPanic},
		{"DatabaseDown", testDatabaseDown},
		{"DatabaseDownThroughBroker", testDatabaseDownThroughBroker},
		{"ReplayAfterRedelivery", testReplayAfterRedelivery},
		{"GiveUpHook", testGiveUpHook},
		{"Batch", testBatch},
		{"BatchWithBadMessage", testBatchWithBadMessage},
		{"BatchFunc", testBatchFunc},
		{"BatchDatabaseDown", testBatchDatabaseDown},
		{"Batcher", testBatcher},
		{"BatcherThroughBroker", testBatcherThroughBroker},
		{"Prune", testPrune},
		{"TransientNotCounted", testTransientNotCounted},
		{"UnknownEventTypeRetried", testUnknownEventTypeRetried},
		{"UnknownEventTypeDeadLettered", testUnknownEventTypeDeadLettered},
		{"NewerSchemaVersionRetried", testNewerSchemaVersionRetried},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newHarness(t))
		})
	}
}

func testMarkProcessed(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	db := h.Store.DB()
	id := event.NewID()
	mark := func(tx *sql.Tx, name string) bool {
		t.Helper()
		fresh, err := h.Store.MarkProcessed(ctx, tx, name, id)
		if err != nil {
			t.Fatalf("MarkProcessed(%s, %s): %v", name, id, err)
		}
		return fresh
	}
	begin := func() *sql.Tx {
		t.Helper()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}

	tx := begin()
	if !mark(tx, "a") {
		t.Fatal("first mark: got false, want true")
	}
	if mark(tx, "a") {
		t.Fatal("second mark in the same transaction: got true, want false")
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}

	tx = begin()
	if !mark(tx, "a") {
		t.Fatal("mark after a rolled-back mark: got false, want true")
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	tx = begin()
	if mark(tx, "a") {
		t.Error("mark after a committed mark: got true, want false")
	}
	if !mark(tx, "b") {
		t.Error("another handler's mark of the same event: got false, want true")
	}
	_ = tx.Rollback()
}

func testMarkProcessedBatch(t *testing.T, h Harness) {
	bm, ok := h.Store.(handler.BatchMarker)
	if !ok {
		t.Skip("the store does not implement handler.BatchMarker")
	}
	ctx := ctxFor(t)
	db := h.Store.DB()
	ids := make([]uuid.UUID, 1203) // more than one multi-row statement
	for i := range ids {
		ids[i] = event.NewID()
	}
	// Some are marked before, one of them by another handler.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 7, 600, 1202} {
		if _, err := h.Store.MarkProcessed(ctx, tx, "batch-marks", ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Store.MarkProcessed(ctx, tx, "someone-else", ids[1]); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	fresh, err := bm.MarkProcessedBatch(ctx, tx, "batch-marks", ids)
	if err != nil || len(fresh) != len(ids) {
		t.Fatalf("MarkProcessedBatch: %d results, %v; want %d", len(fresh), err, len(ids))
	}
	for i, f := range fresh {
		if want := i != 0 && i != 7 && i != 600 && i != 1202; f != want {
			t.Errorf("ids[%d]: new %v, want %v", i, f, want)
		}
	}
	if fresh, err := bm.MarkProcessedBatch(ctx, tx, "batch-marks", ids[:3]); err != nil || slices.Contains(fresh, true) {
		t.Errorf("marking again in the same transaction: %v, %v; want all false", fresh, err)
	}
	if fresh, err := bm.MarkProcessedBatch(ctx, tx, "batch-marks", nil); err != nil || len(fresh) != 0 {
		t.Errorf("MarkProcessedBatch(nil): %v, %v", fresh, err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if fresh, err := h.Store.MarkProcessed(ctx, tx, "batch-marks", ids[3]); err != nil || !fresh {
		t.Errorf("mark after a rolled-back batch: %v, %v; want new", fresh, err)
	}
}

func testDeadLetterStore(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	s := h.Store
	at := time.Date(2026, 11, 27, 10, 0, 0, 123456000, time.UTC)
	letters := []handler.DeadLetter{
		{Handler: "h1", EventID: event.NewID(), Topic: "product", Payload: []byte(`{"a":1}`),
			Headers: map[string]string{"Cqrs-Event-Type": "x", "traceparent": "tp"}, Error: "boom", Attempts: 3,
			FirstFailedAt: at, LastFailedAt: at.Add(time.Minute)},
		{Handler: "h2", EventID: event.NewID(), Payload: []byte{}, Error: "bad", Attempts: 1, FirstFailedAt: at, LastFailedAt: at},
		{Handler: "h1", EventID: event.NewID(), Payload: []byte("x"), Error: "worse", Attempts: 10, FirstFailedAt: at, LastFailedAt: at},
	}
	for _, l := range letters {
		if err := s.PutDeadLetter(ctx, l); err != nil {
			t.Fatalf("PutDeadLetter: %v", err)
		}
	}
	all, err := s.ListDeadLetters(ctx, "", 0, 10)
	if err != nil || len(all) != 3 {
		t.Fatalf("ListDeadLetters(all): %d, %v; want 3", len(all), err)
	}
	for i, got := range all {
		want := letters[i]
		if i > 0 && got.ID <= all[i-1].ID {
			t.Errorf("dead letters out of ID order: %d after %d", got.ID, all[i-1].ID)
		}
		if got.Handler != want.Handler || got.EventID != want.EventID || got.Topic != want.Topic ||
			string(got.Payload) != string(want.Payload) || got.Error != want.Error || got.Attempts != want.Attempts ||
			!maps.Equal(got.Headers, want.Headers) || !sameTime(got.FirstFailedAt, want.FirstFailedAt) ||
			!sameTime(got.LastFailedAt, want.LastFailedAt) {
			t.Errorf("dead letter %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
	h1, err := s.ListDeadLetters(ctx, "h1", 0, 10)
	if err != nil || len(h1) != 2 || h1[0].EventID != letters[0].EventID || h1[1].EventID != letters[2].EventID {
		t.Fatalf("ListDeadLetters(h1): %+v, %v", h1, err)
	}
	page, err := s.ListDeadLetters(ctx, "", all[0].ID, 1)
	if err != nil || len(page) != 1 || page[0].ID != all[1].ID {
		t.Fatalf("ListDeadLetters after %d, limit 1: %+v, %v", all[0].ID, page, err)
	}

	// Dead-lettering the same event again updates the row.
	again := letters[0]
	again.Error, again.Attempts, again.LastFailedAt = "boom again", 4, at.Add(time.Hour)
	again.FirstFailedAt = at.Add(time.Hour)
	if err := s.PutDeadLetter(ctx, again); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetDeadLetter(ctx, all[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Error != "boom again" || got.Attempts != 4 || !sameTime(got.LastFailedAt, at.Add(time.Hour)) ||
		!sameTime(got.FirstFailedAt, at) {
		t.Errorf("after a second PutDeadLetter: %+v; want error, attempts and last failure updated, first failure kept", got)
	}
	if n, _ := s.ListDeadLetters(ctx, "", 0, 10); len(n) != 3 {
		t.Errorf("a second PutDeadLetter of the same event added a row: %d dead letters", len(n))
	}

	if err := s.DeleteDeadLetter(ctx, all[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetDeadLetter(ctx, all[0].ID); !errors.Is(err, handler.ErrDeadLetterNotFound) {
		t.Errorf("GetDeadLetter after delete: %v; want ErrDeadLetterNotFound", err)
	}
	if err := s.DeleteDeadLetter(ctx, all[0].ID); !errors.Is(err, handler.ErrDeadLetterNotFound) {
		t.Errorf("DeleteDeadLetter twice: %v; want ErrDeadLetterNotFound", err)
	}
	if _, err := s.GetDeadLetter(ctx, 1<<40); !errors.Is(err, handler.ErrDeadLetterNotFound) {
		t.Errorf("GetDeadLetter(unknown): %v; want ErrDeadLetterNotFound", err)
	}
}

// sameTime compares times to the microsecond, PostgreSQL's resolution.
func sameTime(a, b time.Time) bool {
	return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
}

func testPruneProcessedStore(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	s := h.Store
	const old, young = 12_000, 10
	markAll := func(name string, n int) {
		tx, err := s.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		for range n {
			if _, err := s.MarkProcessed(ctx, tx, name, event.NewID()); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	markAll("pruned", old)
	markAll("other", 3)
	time.Sleep(10 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(10 * time.Millisecond)
	markAll("pruned", young)

	n, err := s.PruneProcessed(ctx, "pruned", cutoff)
	if err != nil || n != old {
		t.Fatalf("PruneProcessed: %d, %v; want %d", n, err, old)
	}
	n, err = s.PruneProcessed(ctx, "pruned", cutoff)
	if err != nil || n != 0 {
		t.Fatalf("PruneProcessed again: %d, %v; want 0", n, err)
	}
	n, err = s.PruneProcessed(ctx, "pruned", time.Now().Add(time.Hour))
	if err != nil || n != young {
		t.Fatalf("PruneProcessed of the rest: %d, %v; want %d", n, err, young)
	}
	n, err = s.PruneProcessed(ctx, "other", time.Now().Add(time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("PruneProcessed of another handler: %d, %v; want 3 (untouched before)", n, err)
	}
}
