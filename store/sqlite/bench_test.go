package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// BenchmarkAppend appends one event per transaction, each to a new stream,
// through the store and through a raw database/sql loop doing the same
// inserts (event, outbox row, stream row) in the same kind of transaction,
// with its statements unprepared (raw) and prepared once (rawprepared),
// serially and from 16 goroutines. Compare events/s within one run.
func BenchmarkAppend(b *testing.B) {
	payload := []byte(`{"name":"pen","price":120}`)
	md := event.Metadata{CorrelationID: "corr", Extra: map[string]string{"user": "ann"}}

	store := func(b *testing.B) func(ctx context.Context, i int64) error {
		s := newStore(b, sqlite.Config{})
		return func(ctx context.Context, i int64) error {
			_, err := s.Append(ctx, "product-"+strconv.FormatInt(i, 10), event.NoStream, []event.Event{
				{StreamType: "product", Type: "product.created", Data: payload, Metadata: md},
			})
			return err
		}
	}
	// raw is the baseline: the same inserts with database/sql, one writer at
	// a time (as any sane SQLite writer does), statements unprepared or
	// prepared once.
	raw := func(prepare bool) func(b *testing.B) func(ctx context.Context, i int64) error {
		return func(b *testing.B) func(ctx context.Context, i int64) error {
			s := newStore(b, sqlite.Config{})
			db := s.DB()
			queries := []string{
				`INSERT INTO cqrs_events
				(id, stream_id, stream_type, version, type, schema_version, data, metadata, recorded_at)
				VALUES (?, ?, 'product', 1, 'product.created', 1, ?, ?, ?) RETURNING position`,
				`INSERT INTO cqrs_outbox (event_position, created_at) VALUES (?, ?)`,
				`INSERT INTO cqrs_streams (stream_id, stream_type, version) VALUES (?, 'product', 1)`,
			}
			stmts := make([]*sql.Stmt, len(queries))
			if prepare {
				for i, q := range queries {
					st, err := db.Prepare(q)
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { st.Close() })
					stmts[i] = st
				}
			}
			var mu sync.Mutex
			return func(ctx context.Context, i int64) error {
				stream := "product-" + strconv.FormatInt(i, 10)
				mdJSON, err := json.Marshal(md)
				if err != nil {
					return err
				}
				now := time.Now().UnixNano()
				mu.Lock()
				defer mu.Unlock()
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					return err
				}
				defer tx.Rollback()
				row := func(i int, args ...any) *sql.Row {
					if prepare {
						return tx.StmtContext(ctx, stmts[i]).QueryRowContext(ctx, args...)
					}
					return tx.QueryRowContext(ctx, queries[i], args...)
				}
				exec := func(i int, args ...any) error {
					var err error
					if prepare {
						_, err = tx.StmtContext(ctx, stmts[i]).ExecContext(ctx, args...)
					} else {
						_, err = tx.ExecContext(ctx, queries[i], args...)
					}
					return err
				}
				var pos int64
				if err := row(0, event.NewID().String(), stream, payload, string(mdJSON), now).Scan(&pos); err != nil {
					return err
				}
				if err := exec(1, pos, now); err != nil {
					return err
				}
				if err := exec(2, stream); err != nil {
					return err
				}
				return tx.Commit()
			}
		}
	}

	for _, impl := range []struct {
		name string
		mk   func(*testing.B) func(context.Context, int64) error
	}{{"store", store}, {"raw", raw(false)}, {"rawprepared", raw(true)}} {
		b.Run("serial/"+impl.name, func(b *testing.B) {
			ctx := context.Background()
			appendOne := impl.mk(b)
			var i int64
			for b.Loop() {
				i++
				if err := appendOne(ctx, i); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
		b.Run("writers16/"+impl.name, func(b *testing.B) {
			ctx := context.Background()
			appendOne := impl.mk(b)
			var next atomic.Int64
			b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0))) // 16 goroutines on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := appendOne(ctx, next.Add(1)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
