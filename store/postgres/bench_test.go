package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/event"
)

// benchWriters is the number of concurrent writers, as in the design's
// performance table.
const benchWriters = 16

// Run with, for example:
//
//	CQRSKIT_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable \
//	  go test -run '^$' -bench 'Append' -benchtime 5s ./store/postgres
//
// BenchmarkAppend and BenchmarkRawAppend do the same writes (stream row,
// event row, outbox row, one transaction per command) into the same
// schema; compare their events/s within one run, or use
// BenchmarkAppendVsRaw, which interleaves the two. CQRSKIT_BENCH_NO_NOTIFY=1
// disables the outbox notification trigger, to measure what it costs.

func BenchmarkAppend(b *testing.B) {
	s := newBenchStore(b)
	ctx := context.Background()
	var streams atomic.Int64
	b.Run("new-streams", func(b *testing.B) {
		runParallel(b, func(pb *testing.PB) {
			for pb.Next() {
				stream := fmt.Sprintf("product-%d", streams.Add(1))
				if _, err := s.Append(ctx, stream, event.NoStream, []event.Event{benchEvent()}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("existing-streams", func(b *testing.B) {
		runParallel(b, func(pb *testing.PB) {
			stream := fmt.Sprintf("product-%d", streams.Add(1))
			version := int64(0)
			for pb.Next() {
				exp := event.NoStream
				if version > 0 {
					exp = event.Exactly(version)
				}
				res, err := s.Append(ctx, stream, exp, []event.Event{benchEvent()})
				if err != nil {
					b.Error(err)
					return
				}
				version = res.Version
			}
		})
	})
}

func BenchmarkRawAppend(b *testing.B) {
	s := newBenchStore(b)
	write := rawWriter(s.DB())
	var streams atomic.Int64
	b.Run("new-streams", func(b *testing.B) {
		runParallel(b, func(pb *testing.PB) {
			for pb.Next() {
				if err := write(fmt.Sprintf("product-%d", streams.Add(1)), 1); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("existing-streams", func(b *testing.B) {
		runParallel(b, func(pb *testing.PB) {
			stream := fmt.Sprintf("product-%d", streams.Add(1))
			for v := int64(1); pb.Next(); v++ {
				if err := write(stream, v); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// rawWriter returns the baseline: the same rows an Append writes (stream
// row, event, outbox row), as plain statements in one transaction.
func rawWriter(db *sql.DB) func(stream string, version int64) error {
	ctx := context.Background()
	insertEvent := `INSERT INTO cqrs_events (id, stream_id, stream_type, version, type, schema_version, data, metadata)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING position`
	insertOutbox := `INSERT INTO cqrs_outbox (event_position) VALUES ($1)`
	return func(stream string, version int64) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		if version == 1 {
			_, err = tx.ExecContext(ctx, `INSERT INTO cqrs_streams (stream_id, stream_type, version) VALUES ($1, 'product', 1)`, stream)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE cqrs_streams SET version = $2 WHERE stream_id = $1 AND version = $2 - 1`, stream, version)
		}
		if err != nil {
			return err
		}
		e := benchEvent()
		var pos int64
		if err := tx.QueryRowContext(ctx, insertEvent, uuid.Must(uuid.NewV7()), stream, "product", version,
			e.Type, 1, e.Data, "{}").Scan(&pos); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, insertOutbox, pos); err != nil {
			return err
		}
		return tx.Commit()
	}
}

// BenchmarkAppendVsRaw is the robust comparison on a busy machine: every
// writer alternates one Append and one raw command, so both see the same
// load, and each side's rate is writers / mean latency. "%raw" is the
// framework's rate as a percentage of the raw loop's.
func BenchmarkAppendVsRaw(b *testing.B) {
	s := newBenchStore(b)
	ctx := context.Background()
	raw := rawWriter(s.DB())
	var streams atomic.Int64
	for _, existing := range []bool{false, true} {
		name := "new-streams"
		if existing {
			name = "existing-streams"
		}
		b.Run(name, func(b *testing.B) {
			var fwNanos, rawNanos atomic.Int64
			b.SetParallelism(max(1, benchWriters/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				fwStream := fmt.Sprintf("fw-%d", streams.Add(1))
				rawStream := fmt.Sprintf("raw-%d", streams.Add(1))
				var fwVersion int64
				for i := int64(1); pb.Next(); i++ {
					if !existing {
						fwStream = fmt.Sprintf("fw-%d", streams.Add(1))
						rawStream = fmt.Sprintf("raw-%d", streams.Add(1))
						fwVersion = 0
					}
					exp := event.NoStream
					if fwVersion > 0 {
						exp = event.Exactly(fwVersion)
					}
					start := time.Now()
					res, err := s.Append(ctx, fwStream, exp, []event.Event{benchEvent()})
					fwNanos.Add(int64(time.Since(start)))
					if err != nil {
						b.Error(err)
						return
					}
					fwVersion = res.Version
					rawVersion := int64(1)
					if existing {
						rawVersion = i
					}
					start = time.Now()
					err = raw(rawStream, rawVersion)
					rawNanos.Add(int64(time.Since(start)))
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			writers := float64(max(1, benchWriters/runtime.GOMAXPROCS(0)) * runtime.GOMAXPROCS(0))
			fwRate := writers * float64(b.N) / time.Duration(fwNanos.Load()).Seconds()
			rawRate := writers * float64(b.N) / time.Duration(rawNanos.Load()).Seconds()
			b.ReportMetric(fwRate, "events/s")
			b.ReportMetric(rawRate, "raw-events/s")
			b.ReportMetric(100*fwRate/rawRate, "%raw")
		})
	}
}

// BenchmarkLoad reads a 10,000-event stream.
func BenchmarkLoad(b *testing.B) {
	s := newBenchStore(b)
	ctx := context.Background()
	const n = 10_000
	for i := 0; i < n; i += 1000 {
		exp := event.NoStream
		if i > 0 {
			exp = event.Exactly(int64(i))
		}
		batch := make([]event.Event, 1000)
		for j := range batch {
			batch[j] = benchEvent()
		}
		if _, err := s.Append(ctx, "long", exp, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		count := 0
		for _, err := range s.Load(ctx, "long", 1) {
			if err != nil {
				b.Fatal(err)
			}
			count++
		}
		if count != n {
			b.Fatalf("loaded %d", count)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

func newBenchStore(b *testing.B) *Store {
	s := newStore(b, Config{})
	s.DB().SetMaxOpenConns(benchWriters + 4)
	s.DB().SetMaxIdleConns(benchWriters + 4)
	var server string
	if err := s.DB().QueryRow(`SELECT current_setting('server_version') || ', fsync=' || current_setting('fsync') || ', synchronous_commit=' || current_setting('synchronous_commit')`).Scan(&server); err != nil {
		b.Fatal(err)
	}
	b.Logf("PostgreSQL %s", server)
	if os.Getenv("CQRSKIT_BENCH_NO_NOTIFY") == "1" {
		if _, err := s.DB().Exec(`ALTER TABLE cqrs_outbox DISABLE TRIGGER cqrs_outbox_notify`); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// runParallel runs body on benchWriters goroutines and reports events/s
// (one event per command).
func runParallel(b *testing.B, body func(*testing.PB)) {
	b.SetParallelism(max(1, benchWriters/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(body)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

var benchPayload = []byte(`{"name":"Widget","price_cents":1999,"sku":"W-0001"}`)

func benchEvent() event.Event {
	return event.Event{StreamType: "product", Type: "product.created", Data: benchPayload}
}
