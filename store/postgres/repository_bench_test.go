package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
)

// The repository benchmarks measure the user-facing write and load paths on
// PostgreSQL:
//
//	CQRSKIT_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable \
//	  go test -run '^$' -bench 'Repository' -benchtime 5s ./store/postgres

type benchCreated struct {
	Name       string `json:"name"`
	SKU        string `json:"sku"`
	PriceCents int64  `json:"price_cents"`
}

type benchPriced struct {
	PriceCents int64 `json:"price_cents"`
}

type benchProduct struct {
	es.Base
	Name       string
	SKU        string
	PriceCents int64
	Changes    int
}

func (p *benchProduct) Apply(data any) error {
	switch e := data.(type) {
	case benchCreated:
		p.Name, p.SKU, p.PriceCents = e.Name, e.SKU, e.PriceCents
	case benchPriced:
		p.PriceCents = e.PriceCents
		p.Changes++
	default:
		return fmt.Errorf("bench product: unexpected event %T", data)
	}
	return nil
}

func benchRepository(b *testing.B, s *Store, snapshots bool) *es.Repository[*benchProduct] {
	reg := event.NewRegistry(nil)
	event.MustRegister[benchCreated](reg, "product.created")
	event.MustRegister[benchPriced](reg, "product.priced")
	cfg := es.RepositoryConfig[*benchProduct]{
		New:        func() *benchProduct { return &benchProduct{} },
		StreamType: "product",
	}
	if snapshots {
		cfg.Snapshots = s
		cfg.SnapshotPolicy = es.EveryN(1_000_000) // taken by hand below
	}
	repo, err := es.NewRepository(s, reg, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return repo
}

// BenchmarkRepositorySaveVsRaw: 16 writers each alternate one
// Repository.Save of a new aggregate (1 event + its outbox row, one
// transaction) and one raw database/sql command writing the same rows, so
// both sides see the same load. "%raw" is the framework's rate as a
// percentage of the raw loop's (target >= 85).
func BenchmarkRepositorySaveVsRaw(b *testing.B) {
	s := newBenchStore(b)
	repo := benchRepository(b, s, false)
	raw := rawWriter(s.DB())
	ctx := context.Background()
	var ids atomic.Int64
	var fwNanos, rawNanos atomic.Int64
	b.SetParallelism(max(1, benchWriters/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p := &benchProduct{}
			p.SetID(fmt.Sprintf("fw-%d", ids.Add(1)))
			start := time.Now()
			err := es.Raise(p, benchCreated{Name: "Widget", SKU: "W-1", PriceCents: 1999})
			if err == nil {
				err = repo.Save(ctx, p)
			}
			fwNanos.Add(int64(time.Since(start)))
			if err != nil {
				b.Error(err)
				return
			}
			start = time.Now()
			err = raw(fmt.Sprintf("raw-%d", ids.Add(1)), 1)
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
	b.ReportMetric(fwRate, "cmds/s")
	b.ReportMetric(rawRate, "raw-cmds/s")
	b.ReportMetric(100*fwRate/rawRate, "%raw")
}

// BenchmarkRepositoryLoad10k loads a 10,000-event aggregate by full replay
// and from a snapshot at its last version (target: snapshot >= 20x
// faster), reporting the replay's decode+apply rate.
func BenchmarkRepositoryLoad10k(b *testing.B) {
	s := newBenchStore(b)
	ctx := context.Background()
	const n = 10_000
	plain := benchRepository(b, s, false)
	p := &benchProduct{}
	p.SetID("long")
	if err := es.Raise(p, benchCreated{Name: "Widget", SKU: "W-1", PriceCents: 1}); err != nil {
		b.Fatal(err)
	}
	for i := 1; i < n; i++ {
		if err := es.Raise(p, benchPriced{PriceCents: int64(i)}); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 0 {
			if err := plain.Save(ctx, p); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := plain.Save(ctx, p); err != nil {
		b.Fatal(err)
	}
	// Take the snapshot by loading once through a repository whose policy
	// snapshots on load.
	snapRepo := benchRepository(b, s, true)
	taker, err := es.NewRepository(s, registryOf(b), es.RepositoryConfig[*benchProduct]{
		New: func() *benchProduct { return &benchProduct{} }, StreamType: "product",
		Snapshots: s, SnapshotPolicy: es.EveryN(1),
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := taker.Load(ctx, "long"); err != nil {
		b.Fatal(err)
	}
	if snap, ok, err := s.LoadSnapshot(ctx, "product-long"); err != nil || !ok || snap.Version != n {
		b.Fatalf("snapshot at %d, %v, %v; want one at %d", snap.Version, ok, err, n)
	}
	for _, tc := range []struct {
		name string
		repo *es.Repository[*benchProduct]
	}{{"full-replay", plain}, {"snapshot", snapRepo}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				got, err := tc.repo.Load(ctx, "long")
				if err != nil {
					b.Fatal(err)
				}
				if got.Version() != n || got.Changes != n-1 {
					b.Fatalf("loaded version %d with %d changes", got.Version(), got.Changes)
				}
			}
			if tc.name == "full-replay" {
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
			}
		})
	}
}

func registryOf(b *testing.B) *event.Registry {
	reg := event.NewRegistry(nil)
	if err := errors.Join(event.Register[benchCreated](reg, "product.created"), event.Register[benchPriced](reg, "product.priced")); err != nil {
		b.Fatal(err)
	}
	return reg
}

// BenchmarkRepositoryLoadVsRaw: each iteration alternates one
// Repository.Load of a 10,000-event aggregate by full replay and one raw
// loop over the same rows (one SELECT of version, type and data,
// json.Unmarshal, Apply), so both sides see the same load. "%raw" is the
// framework's rate as a percentage of the raw loop's (target >= 70).
func BenchmarkRepositoryLoadVsRaw(b *testing.B) {
	s := newBenchStore(b)
	ctx := context.Background()
	const n = 10_000
	repo := benchRepository(b, s, false)
	p := &benchProduct{}
	p.SetID("vsraw")
	if err := es.Raise(p, benchCreated{Name: "Widget", SKU: "W-1", PriceCents: 1}); err != nil {
		b.Fatal(err)
	}
	for i := 1; i < n; i++ {
		if err := es.Raise(p, benchPriced{PriceCents: int64(i)}); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 0 {
			if err := repo.Save(ctx, p); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := repo.Save(ctx, p); err != nil {
		b.Fatal(err)
	}
	raw := func() (*benchProduct, int64, error) {
		rs, err := s.DB().QueryContext(ctx, `SELECT version, type, data FROM cqrs_events WHERE stream_id = $1 ORDER BY version`, "product-vsraw")
		if err != nil {
			return nil, 0, err
		}
		defer rs.Close()
		p := &benchProduct{}
		var version int64
		for rs.Next() {
			var typ string
			var data []byte
			if err := rs.Scan(&version, &typ, &data); err != nil {
				return nil, 0, err
			}
			var payload any
			switch typ {
			case "product.created":
				var c benchCreated
				err = json.Unmarshal(data, &c)
				payload = c
			case "product.priced":
				var c benchPriced
				err = json.Unmarshal(data, &c)
				payload = c
			default:
				err = fmt.Errorf("unknown event type %q", typ)
			}
			if err == nil {
				err = p.Apply(payload)
			}
			if err != nil {
				return nil, 0, err
			}
		}
		return p, version, rs.Err()
	}
	var fwNanos, rawNanos time.Duration
	for b.Loop() {
		start := time.Now()
		got, err := repo.Load(ctx, "vsraw")
		fwNanos += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if got.Version() != n || got.Changes != n-1 {
			b.Fatalf("loaded version %d with %d changes", got.Version(), got.Changes)
		}
		start = time.Now()
		rp, version, err := raw()
		rawNanos += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if version != n || rp.Changes != n-1 {
			b.Fatalf("raw loop read version %d with %d changes", version, rp.Changes)
		}
	}
	fwRate := float64(n*b.N) / fwNanos.Seconds()
	rawRate := float64(n*b.N) / rawNanos.Seconds()
	b.ReportMetric(fwRate, "events/s")
	b.ReportMetric(rawRate, "raw-events/s")
	b.ReportMetric(100*fwRate/rawRate, "%raw")
}
