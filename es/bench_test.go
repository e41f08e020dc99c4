package es_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store/memory"
)

const benchEvents = 10_000

// seedAccount stores an account with n events (opened, then deposits) in
// store, in batches, and returns the registry.
func seedAccount(b *testing.B, store event.Store, id string, n int) *event.Registry {
	b.Helper()
	reg := newRegistry()
	ctx := context.Background()
	batch := make([]event.Event, 0, 1000)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if _, err := store.Append(ctx, "account-"+id, event.Any, batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := range n {
		var data any = Deposited{Amount: 1}
		if i == 0 {
			data = AccountOpened{Owner: "bench"}
		}
		e, err := reg.NewEvent(data, event.Metadata{CorrelationID: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, e)
		if len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
	return reg
}

func benchRepo(b *testing.B, store *memory.Store, reg *event.Registry, snapshots bool) *es.Repository[*Account] {
	b.Helper()
	cfg := es.RepositoryConfig[*Account]{New: func() *Account { return &Account{} }, StreamType: "account"}
	if snapshots {
		cfg.Snapshots = store
		cfg.SnapshotPolicy = es.EveryN(1000)
	}
	repo, err := es.NewRepository(store, reg, cfg)
	if err != nil {
		b.Fatal(err)
	}
	return repo
}

func benchLoad(b *testing.B, snapshots bool) {
	store := memory.New()
	reg := seedAccount(b, store, "b", benchEvents)
	repo := benchRepo(b, store, reg, snapshots)
	ctx := context.Background()
	// The first load replays and, with snapshots, takes one at version 10,000.
	if _, err := repo.Load(ctx, "b"); err != nil {
		b.Fatal(err)
	}
	var applied int
	for b.Loop() {
		acct, err := repo.Load(ctx, "b")
		if err != nil {
			b.Fatal(err)
		}
		if acct.Version() != benchEvents {
			b.Fatalf("version %d", acct.Version())
		}
		applied += acct.applied
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "loads/s")
	b.ReportMetric(float64(applied)/float64(b.N), "events-applied/load")
}

// BenchmarkLoad10kFullReplay loads an aggregate of 10,000 events by
// decoding and applying every one.
func BenchmarkLoad10kFullReplay(b *testing.B) { benchLoad(b, false) }

// BenchmarkLoad10kWithSnapshot loads the same aggregate from a snapshot at
// its last version.
func BenchmarkLoad10kWithSnapshot(b *testing.B) { benchLoad(b, true) }

// BenchmarkDecodeApply is the replay rate without the store: registry
// decode plus Apply per event.
func BenchmarkDecodeApply(b *testing.B) {
	store := memory.New()
	reg := seedAccount(b, store, "d", 1000)
	var events []event.Event
	for e, err := range store.Load(context.Background(), "account-d", 1) {
		if err != nil {
			b.Fatal(err)
		}
		events = append(events, e)
	}
	acct := &Account{}
	n := 0
	for b.Loop() {
		data, err := reg.Decode(events[n%len(events)])
		if err != nil {
			b.Fatal(err)
		}
		if err := acct.Apply(data); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkUpdate is one load-command-save cycle without contention, on
// 64 aggregates of 8 to 71 events each (new aggregates replace full ones),
// so every load replays a short stream.
func BenchmarkUpdate(b *testing.B) {
	store := memory.New()
	reg := newRegistry()
	repo := benchRepo(b, store, reg, false)
	ctx := context.Background()
	ids := make([]string, 64)
	for i := range ids {
		ids[i] = "u" + strconv.Itoa(i)
		open(b, repo, ids[i], 7+i)
	}
	n := 0
	for b.Loop() {
		i := n % len(ids)
		acct, err := repo.Update(ctx, ids[i], func(a *Account) error { return a.Deposit(1) })
		if err != nil {
			b.Fatal(err)
		}
		if acct.Version() >= 72 {
			ids[i] += "x"
			open(b, repo, ids[i], 7)
		}
		n++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
}
