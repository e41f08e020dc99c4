package outbox_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/outbox"
	"github.com/cqrskit/cqrskit/store/postgres"
	"github.com/cqrskit/cqrskit/testutil/natstest"
	"github.com/cqrskit/cqrskit/testutil/pgtest"
)

// BenchmarkDrainToJetStream drains a pre-filled PostgreSQL outbox to
// JetStream (file storage, in-process server) through the Relay, beside
// the two raw limits measured in the same run on the same data: the SQL
// half alone (read a batch with its events, delete it) and the publish half
// alone (plain nats.go async publish with Nats-Msg-Id, then wait for every
// ack). Rows: CQRSKIT_BENCH_DRAIN_ROWS, default 100,000.
//
//	CQRSKIT_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable \
//	  go test -run '^$' -bench DrainToJetStream -benchtime 1x ./outbox
func BenchmarkDrainToJetStream(b *testing.B) {
	rows := 100_000
	if v, err := strconv.Atoi(os.Getenv("CQRSKIT_BENCH_DRAIN_ROWS")); err == nil && v > 0 {
		rows = v
	}
	const batch = 2000
	ctx := context.Background()
	pg := pgtest.New(b)
	store, err := postgres.New(pg.DB(), postgres.Config{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	url := natstest.URL(b)

	refill := func(b *testing.B) {
		b.Helper()
		b.StopTimer()
		defer b.StartTimer()
		payload := []byte(`{"name":"Widget","price_cents":1999,"sku":"W-0001"}`)
		const perAppend = 1000
		for i := 0; i < rows; i += perAppend {
			evs := make([]event.Event, min(perAppend, rows-i))
			for j := range evs {
				evs[j] = event.Event{StreamType: "product", Type: "product.created", Data: payload,
					Metadata: event.Metadata{CorrelationID: "bench"}}
			}
			if _, err := store.Append(ctx, "product-"+uuid.NewString(), event.NoStream, evs); err != nil {
				b.Fatal(err)
			}
		}
	}
	report := func(b *testing.B, start time.Time) {
		b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "events/s")
	}

	b.Run("relay", func(b *testing.B) {
		broker := natsBroker(b, url)
		for b.Loop() {
			refill(b)
			r, err := outbox.NewRelay(outbox.Config{Store: store, Publisher: broker, BatchSize: batch, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			for done := 0; done < rows; {
				n, err := r.DrainOnce(ctx)
				if err != nil {
					b.Fatal(err)
				}
				done += n
			}
			report(b, start)
		}
	})

	b.Run("raw-sql-drain", func(b *testing.B) {
		for b.Loop() {
			refill(b)
			db := store.DB()
			sel := `SELECT o.id, e.id, e.stream_id, e.type, e.data, e.metadata FROM ` + store.Table("outbox") + ` o
				JOIN ` + store.Table("events") + ` e ON e.position = o.event_position ORDER BY o.id LIMIT $1`
			del := `DELETE FROM ` + store.Table("outbox") + ` WHERE id = ANY($1)`
			start := time.Now()
			for done := 0; done < rows; {
				rs, err := db.QueryContext(ctx, sel, batch)
				if err != nil {
					b.Fatal(err)
				}
				var ids []int64
				for rs.Next() {
					var id int64
					var eid, stream, typ string
					var data, md []byte
					if err := rs.Scan(&id, &eid, &stream, &typ, &data, &md); err != nil {
						b.Fatal(err)
					}
					ids = append(ids, id)
				}
				if err := rs.Err(); err != nil {
					b.Fatal(err)
				}
				rs.Close()
				if _, err := db.ExecContext(ctx, del, ids); err != nil {
					b.Fatal(err)
				}
				done += len(ids)
			}
			report(b, start)
		}
	})

	b.Run("raw-nats-publish", func(b *testing.B) {
		nc, err := nats.Connect(url)
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			b.Fatal(err)
		}
		name := "RAWBENCH"
		if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"raw.>"},
			Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
			b.Fatal(err)
		}
		payload := []byte(`{"name":"Widget","price_cents":1999,"sku":"W-0001"}`)
		for b.Loop() {
			start := time.Now()
			for i := 0; i < rows; i += batch {
				futures := make([]jetstream.PubAckFuture, 0, batch)
				for j := i; j < min(i+batch, rows); j++ {
					m := nats.NewMsg("raw.product." + strconv.Itoa(j%1000))
					m.Data = payload
					m.Header.Set(jetstream.MsgIDHeader, uuid.NewString())
					m.Header.Set("Cqrs-Correlation-Id", "bench")
					f, err := js.PublishMsgAsync(m)
					if err != nil {
						b.Fatal(err)
					}
					futures = append(futures, f)
				}
				for _, f := range futures {
					select {
					case <-f.Ok():
					case err := <-f.Err():
						b.Fatal(err)
					}
				}
			}
			report(b, start)
		}
	})
}
