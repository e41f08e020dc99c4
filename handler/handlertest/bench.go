package handlertest

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/messagebus"
)

// benchStreams is the number of read-model rows the benchmark's events
// update.
const benchStreams = 1000

// Bench measures consumer throughput into a read model (one row per
// stream, 1,000 streams, updated per event) in events/s:
//
//	handler/1-per-tx     Handle, one delivery per transaction
//	handler/batch-100    HandleBatch, 100 deliveries per transaction
//	handler/batcher-16   a Batcher fed by 16 goroutines (MaxBatch 100)
//	raw/1-per-tx         database/sql: dedupe INSERT ... ON CONFLICT DO
//	                     NOTHING + read-model upsert, one event per tx
//	raw/100-per-tx       the same, 100 events per transaction
//
// Each sub-benchmark gets a fresh harness. Compare within one run.
func Bench(b *testing.B, newHarness func(testing.TB) Harness) {
	ctx := context.Background()
	setup := func(b *testing.B) (Harness, *readModel) {
		h := newHarness(b)
		return h, newReadModel(b, h.Store.DB())
	}
	var seq atomic.Int64
	next := func() messagebus.Delivery {
		i := seq.Add(1)
		return delivery(newEvent(fmt.Sprint("s-", i%benchStreams), i, 1), 1)
	}
	report := func(b *testing.B, events int64) {
		b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	}
	quiet := quietLogger()

	b.Run("handler/1-per-tx", func(b *testing.B) {
		h, rm := setup(b)
		hd, err := handler.Idempotent(handler.Config{Name: "bench", Store: h.Store, Func: rm.apply, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := hd.Handle(ctx, next()); err != nil {
				b.Fatal(err)
			}
		}
		report(b, int64(b.N))
	})
	b.Run("handler/batch-100", func(b *testing.B) {
		h, rm := setup(b)
		hd, err := handler.Idempotent(handler.Config{Name: "bench", Store: h.Store, Func: rm.apply, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		ds := make([]messagebus.Delivery, 100)
		for b.Loop() {
			for i := range ds {
				ds[i] = next()
			}
			for _, err := range hd.HandleBatch(ctx, ds) {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		report(b, int64(b.N)*100)
	})
	b.Run("handler/batcher-16", func(b *testing.B) {
		h, rm := setup(b)
		hd, err := handler.Idempotent(handler.Config{Name: "bench", Store: h.Store, Func: rm.apply, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		bt, err := handler.NewBatcher(hd, handler.BatcherConfig{MaxBatch: 100})
		if err != nil {
			b.Fatal(err)
		}
		b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := bt.Handle(ctx, next()); err != nil {
					b.Error(err)
					return
				}
			}
		})
		report(b, int64(b.N))
	})
	for _, perTx := range []int{1, 100} {
		b.Run(fmt.Sprintf("raw/%d-per-tx", perTx), func(b *testing.B) {
			h, rm := setup(b)
			db := h.Store.DB()
			if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS handlertest_bench_processed (
				handler TEXT NOT NULL, event_id TEXT NOT NULL, processed_at BIGINT NOT NULL,
				PRIMARY KEY (handler, event_id))`); err != nil {
				b.Fatal(err)
			}
			evs := make([]event.Event, perTx)
			for b.Loop() {
				for i := range evs {
					i64 := seq.Add(1)
					evs[i] = newEvent(fmt.Sprint("s-", i64%benchStreams), i64, 1)
				}
				if err := rawConsume(ctx, db, rm, evs); err != nil {
					b.Fatal(err)
				}
			}
			report(b, int64(b.N)*int64(perTx))
		})
	}
}

// rawConsume is the baseline: the dedupe insert and the read-model update
// for each event, in one transaction.
func rawConsume(ctx context.Context, db *sql.DB, rm *readModel, evs []event.Event) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, e := range evs {
		res, err := tx.ExecContext(ctx, `INSERT INTO handlertest_bench_processed (handler, event_id, processed_at)
			VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, "bench", e.ID.String(), time.Now().UnixNano())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			continue
		}
		if err := rm.apply(ctx, tx, e); err != nil {
			return err
		}
	}
	return tx.Commit()
}
