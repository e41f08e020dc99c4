package sqlite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

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

// BenchmarkRepositoryLoadVsRaw: each iteration alternates one
// Repository.Load of a 10,000-event aggregate by full replay and one raw
// loop over the same rows (one SELECT of version, type and data,
// json.Unmarshal, Apply), so both sides see the same load. "%raw" is the
// framework's rate as a percentage of the raw loop's (target >= 70).
func BenchmarkRepositoryLoadVsRaw(b *testing.B) {
	s := newStore(b, sqlite.Config{})
	ctx := context.Background()
	const n = 10_000
	reg := event.NewRegistry(nil)
	event.MustRegister[benchCreated](reg, "product.created")
	event.MustRegister[benchPriced](reg, "product.priced")
	repo, err := es.NewRepository(s, reg, es.RepositoryConfig[*benchProduct]{
		New: func() *benchProduct { return &benchProduct{} }, StreamType: "product",
	})
	if err != nil {
		b.Fatal(err)
	}
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
		rs, err := s.DB().QueryContext(ctx, `SELECT version, type, data FROM cqrs_events WHERE stream_id = ? ORDER BY version`, "product-vsraw")
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
