package projectiontest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/projection"
)

// BenchRebuild appends events (in 1,000 streams) to a fresh harness once,
// then measures in events/s:
//
//	rebuild   Projection.Rebuild into a read model with one row per
//	          stream, upserted per event, 500 events per transaction
//	readall   a bare ReadAll loop over the same events, 500 a page: the
//	          ceiling set by reading alone
func BenchRebuild(b *testing.B, newHarness func(testing.TB) Harness, events int) {
	ctx := context.Background()
	h := newHarness(b)
	const streams, chunk = 1000, 1000
	for done := 0; done < events; done += chunk {
		evs := make([]event.Event, min(chunk, events-done))
		for i := range evs {
			evs[i] = event.Event{ID: event.NewID(), StreamType: "bench", Type: "bench.happened",
				Data: fmt.Appendf(nil, `{"i":%d}`, done+i)}
		}
		stream := fmt.Sprint("s-", (done/chunk)%streams)
		if _, err := h.Events.Append(ctx, stream, event.Any, evs); err != nil {
			b.Fatal(err)
		}
	}
	db := h.Checkpoints.DB()
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS projectiontest_bench (
		stream_id TEXT PRIMARY KEY, n BIGINT NOT NULL, last_version BIGINT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	apply := func(ctx context.Context, tx *sql.Tx, e event.Event) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO projectiontest_bench (stream_id, n, last_version) VALUES ($1, 1, $2)
			ON CONFLICT (stream_id) DO UPDATE SET n = projectiontest_bench.n + 1, last_version = $2`, e.StreamID, e.Version)
		return err
	}
	reset := func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM projectiontest_bench`)
		return err
	}

	b.Run(fmt.Sprintf("rebuild/%d", events), func(b *testing.B) {
		p, err := projection.New(projection.Config{Name: "bench", Events: h.Events, Checkpoints: h.Checkpoints,
			Apply: apply, Logger: quietLogger()})
		if err != nil {
			b.Fatal(err)
		}
		var last projection.Progress
		for b.Loop() {
			if err := p.Rebuild(ctx, reset, func(pr projection.Progress) { last = pr }); err != nil {
				b.Fatal(err)
			}
			if last.Done != int64(events) {
				b.Fatalf("rebuild applied %d events, want %d", last.Done, events)
			}
		}
		b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	// applyBatch writes a whole batch with one multi-row upsert per batch:
	// the set-based read model a fast rebuild over a network database wants.
	applyBatch := func(ctx context.Context, tx *sql.Tx, evs []event.Event) error {
		type agg struct{ n, last int64 }
		per := map[string]*agg{}
		var order []string
		for _, e := range evs {
			a := per[e.StreamID]
			if a == nil {
				a = &agg{}
				per[e.StreamID] = a
				order = append(order, e.StreamID)
			}
			a.n++
			a.last = e.Version
		}
		var q strings.Builder
		q.WriteString(`INSERT INTO projectiontest_bench (stream_id, n, last_version) VALUES `)
		args := make([]any, 0, 3*len(order))
		for i, id := range order {
			if i > 0 {
				q.WriteString(", ")
			}
			fmt.Fprintf(&q, "($%d, $%d, $%d)", 3*i+1, 3*i+2, 3*i+3)
			args = append(args, id, per[id].n, per[id].last)
		}
		q.WriteString(` ON CONFLICT (stream_id) DO UPDATE SET n = projectiontest_bench.n + excluded.n, last_version = excluded.last_version`)
		_, err := tx.ExecContext(ctx, q.String(), args...)
		return err
	}
	b.Run(fmt.Sprintf("rebuild-batched/%d", events), func(b *testing.B) {
		p, err := projection.New(projection.Config{Name: "bench-batched", Events: h.Events, Checkpoints: h.Checkpoints,
			ApplyBatch: applyBatch, Apply: apply, Logger: quietLogger()})
		if err != nil {
			b.Fatal(err)
		}
		var last projection.Progress
		for b.Loop() {
			if err := p.Rebuild(ctx, reset, func(pr projection.Progress) { last = pr }); err != nil {
				b.Fatal(err)
			}
			if last.Done != int64(events) {
				b.Fatalf("rebuild applied %d events, want %d", last.Done, events)
			}
		}
		b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run(fmt.Sprintf("readall/%d", events), func(b *testing.B) {
		for b.Loop() {
			var cur event.Cursor
			n := 0
			for {
				page, err := h.Events.ReadAll(ctx, cur, 500)
				if err != nil {
					b.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				n += len(page)
				cur = page[len(page)-1].Cursor()
			}
			if n != events {
				b.Fatalf("read %d events, want %d", n, events)
			}
		}
		b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}
