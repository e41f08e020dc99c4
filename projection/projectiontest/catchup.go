package projectiontest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/projection"
)

func testCatchUp(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Checkpoints.DB(), "projectiontest_catchup")
	for i := range 10 {
		appendEvents(t, h.Events, fmt.Sprint("s-", i), 100+i*3, 37)
	}
	p := newProjection(t, projection.Config{Name: "catchup", Events: h.Events, Checkpoints: h.Checkpoints,
		Apply: rm.apply, BatchSize: 100})
	n, err := catchUp(ctx, p, 1135)
	if err != nil || n != 1135 {
		t.Fatalf("CatchUp: %d, %v; want 1135", n, err)
	}
	if d := diff(rm.rows(t), replay(t, h.Events)); d != "" {
		t.Fatalf("read model differs from a replay: %s", d)
	}
	if n, err := p.CatchUp(ctx); err != nil || n != 0 {
		t.Errorf("second CatchUp: %d, %v; want 0", n, err)
	}
	st, err := p.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := lastCursor(t, h.Events)
	if st.Name != "catchup" || st.Checkpoint != last || st.Running || st.LastError != nil {
		t.Errorf("Status: %+v; want checkpoint %+v", st, last)
	}
	if counterOf(h) != nil && st.Lag != 0 {
		t.Errorf("Status.Lag %d, want 0", st.Lag)
	}
	appendEvents(t, h.Events, "late", 5, 5)
	if st, err := p.Status(ctx); err != nil || counterOf(h) != nil && st.Lag != 5 {
		t.Errorf("Status after 5 more events: %+v, %v; want lag 5", st, err)
	}
	// A new Projection value continues from the stored checkpoint.
	p2 := newProjection(t, projection.Config{Name: "catchup", Events: h.Events, Checkpoints: h.Checkpoints, Apply: rm.apply})
	if n, err := catchUp(ctx, p2, 5); err != nil || n != 5 {
		t.Errorf("CatchUp of a second Projection: %d, %v; want 5", n, err)
	}
}

func lastCursor(t testing.TB, s event.Store) event.Cursor {
	t.Helper()
	var cur event.Cursor
	for {
		page, err := s.ReadAll(ctxFor(t), cur, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return cur
		}
		cur = page[len(page)-1].Cursor()
	}
}

// testConcurrentWriters: 16 writers commit events in random order with
// random delays while two runners of one projection compete; the read
// model must end equal to a replay of the whole log, and a rebuild must
// give the same read model.
func testConcurrentWriters(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	rm := newReadModel(t, h.Checkpoints.DB(), "projectiontest_concurrent")
	cfg := projection.Config{Name: "concurrent", Events: h.Events, Checkpoints: h.Checkpoints, Apply: rm.apply,
		BatchSize: 50, PollInterval: 5 * time.Millisecond}
	runners := []*projection.Projection{newProjection(t, cfg), newProjection(t, cfg)}
	runCtx, stop := context.WithCancel(ctx)
	var running sync.WaitGroup
	for _, p := range runners {
		running.Go(func() {
			if err := p.Run(runCtx); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}

	const writers, perWriter, streams = 16, 40, 24
	var wg sync.WaitGroup
	var appended atomic.Int64
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for i := range perWriter {
				stream := fmt.Sprint("s-", rng.IntN(streams))
				evs := make([]event.Event, 1+rng.IntN(3))
				for j := range evs {
					evs[j] = event.Event{ID: event.NewID(), StreamType: "test", Type: "test.happened",
						Data: fmt.Appendf(nil, `{"w":%d,"i":%d,"j":%d}`, w, i, j)}
				}
				delay := time.Duration(rng.IntN(2000)) * time.Microsecond
				if err := appendSlowly(ctx, h.Events, stream, evs, delay); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				appended.Add(int64(len(evs)))
			}
		})
	}
	wg.Wait()
	want := replay(t, h.Events)
	eventually(t, fmt.Sprintf("the read model to catch up with %d events", appended.Load()), func() bool {
		return rm.total(t) >= appended.Load()
	})
	stop()
	running.Wait()
	if d := diff(rm.rows(t), want); d != "" {
		t.Fatalf("read model differs from a replay of the log: %s", d)
	}
	for i, p := range runners {
		if st, err := p.Status(ctx); err != nil || st.LastError != nil || st.Running {
			t.Errorf("runner %d: Status %+v, %v", i, st, err)
		}
	}

	// Rebuild: the same read model again, with progress.
	var progress []projection.Progress
	err := runners[0].Rebuild(ctx, rm.reset, func(p projection.Progress) { progress = append(progress, p) })
	if err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	if d := diff(rm.rows(t), want); d != "" {
		t.Fatalf("rebuilt read model differs from a replay of the log: %s", d)
	}
	checkProgress(t, h, progress, appended.Load())
}

// appendSlowly appends evs, holding the transaction open for delay before
// it commits when the store takes the caller's transaction, so that
// commits come out of position order where the store allows it.
func appendSlowly(ctx context.Context, s event.Store, stream string, evs []event.Event, delay time.Duration) error {
	ts, ok := s.(event.TxStore)
	if !ok {
		time.Sleep(delay)
		_, err := s.Append(ctx, stream, event.Any, evs)
		return err
	}
	tx, err := ts.DB().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := ts.AppendTx(ctx, tx, stream, event.Any, evs); err != nil {
		return err
	}
	time.Sleep(delay)
	if err := tx.Commit(); err != nil {
		return err
	}
	ts.Committed()
	return nil
}

func checkProgress(t *testing.T, h Harness, progress []projection.Progress, total int64) {
	t.Helper()
	if len(progress) < 2 {
		t.Fatalf("progress reported %d times, want a start and at least one batch", len(progress))
	}
	if p := progress[0]; p.Done != 0 {
		t.Errorf("first progress report: %+v, want Done 0", p)
	}
	for i := 1; i < len(progress); i++ {
		if progress[i].Done < progress[i-1].Done || progress[i].Elapsed < progress[i-1].Elapsed {
			t.Errorf("progress went backwards: %+v after %+v", progress[i], progress[i-1])
		}
	}
	last := progress[len(progress)-1]
	wantTotal := total
	if counterOf(h) == nil {
		wantTotal = -1
	}
	if last.Done != total || last.Total != wantTotal || last.Elapsed <= 0 || last.Rate <= 0 {
		t.Errorf("last progress report: %+v; want Done %d, Total %d, a rate and the elapsed time", last, total, wantTotal)
	}
}
