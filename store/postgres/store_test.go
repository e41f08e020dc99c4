package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/testutil/pgtest"
)

func TestAppendAndLoad(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := context.Background()
	in := evs(3)
	in[1].Metadata = event.Metadata{CorrelationID: "corr-1", TraceParent: "00-abc-def-01", Extra: map[string]string{"tenant": "t1"}}
	in[2].SchemaVersion = 3
	res, err := s.Append(ctx, "product-1", event.NoStream, in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 3 || len(res.Events) != 3 {
		t.Fatalf("result %+v", res)
	}
	got, err := load(t, s, "product-1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("loaded %d events", len(got))
	}
	for i, e := range got {
		r := res.Events[i]
		if e.ID != r.ID || e.Version != int64(i+1) || e.Position != r.Position || e.TxID != r.TxID || e.TxID == 0 ||
			!e.RecordedAt.Equal(r.RecordedAt) || e.RecordedAt.Location() != time.UTC || string(e.Data) != string(in[i].Data) ||
			e.StreamID != "product-1" || e.StreamType != "product" || e.Type != "product.renamed" {
			t.Errorf("event %d: loaded %+v, appended %+v", i, e, r)
		}
	}
	if got[0].SchemaVersion != 1 || got[2].SchemaVersion != 3 {
		t.Errorf("schema versions %d, %d", got[0].SchemaVersion, got[2].SchemaVersion)
	}
	if md := got[1].Metadata; md.CorrelationID != "corr-1" || md.TraceParent != "00-abc-def-01" || md.Extra["tenant"] != "t1" {
		t.Errorf("metadata %+v", md)
	}
	if got[0].Position >= got[1].Position {
		t.Errorf("positions not increasing: %d, %d", got[0].Position, got[1].Position)
	}

	if got, _ := load(t, s, "product-1", 3); len(got) != 1 || got[0].Version != 3 {
		t.Errorf("load from 3: %+v", got)
	}
	if got, err := load(t, s, "product-1", 4); len(got) != 0 || err != nil {
		t.Errorf("load past the end: %d events, %v", len(got), err)
	}
	if _, err := load(t, s, "product-404", 1); !errors.Is(err, event.ErrStreamNotFound) {
		t.Errorf("missing stream: %v", err)
	}
}

func TestExpectedVersions(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := context.Background()
	must := func(stream string, exp event.ExpectedVersion, want int64) {
		t.Helper()
		res, err := s.Append(ctx, stream, exp, evs(1))
		if err != nil || res.Version != want {
			t.Fatalf("append %s %s: %+v, %v", stream, exp, res, err)
		}
	}
	conflict := func(stream string, exp event.ExpectedVersion, actual int64) {
		t.Helper()
		_, err := s.Append(ctx, stream, exp, evs(1))
		var ce *event.ConcurrencyError
		if !errors.As(err, &ce) || !errors.Is(err, event.ErrConcurrencyConflict) {
			t.Fatalf("append %s %s: %v, want a conflict", stream, exp, err)
		}
		if ce.Stream != stream || ce.Expected != exp || ce.Actual != actual {
			t.Errorf("conflict %+v, want stream %s expected %s actual %d", ce, stream, exp, actual)
		}
	}
	conflict("a", event.StreamExists, 0)
	conflict("a", event.Exactly(1), 0)
	must("a", event.Any, 1)
	must("a", event.Any, 2)
	conflict("a", event.NoStream, 2)
	conflict("a", event.Exactly(1), 2)
	conflict("a", event.Exactly(3), 2)
	must("a", event.Exactly(2), 3)
	must("a", event.StreamExists, 4)
	must("b", event.NoStream, 1)
	if n := countRows(t, s, "events"); n != 5 {
		t.Errorf("%d events stored, want 5", n)
	}
	if n := countRows(t, s, "outbox"); n != 5 {
		t.Errorf("%d outbox rows, want 5", n)
	}
}

func TestAppendSkipsStoredEvents(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := context.Background()
	in := evs(2)
	for i := range in {
		in[i].ID = event.NewID()
	}
	if _, err := s.Append(ctx, "p", event.NoStream, in); err != nil {
		t.Fatal(err)
	}
	// A retry of the same append is a no-op, whatever it expects.
	res, err := s.Append(ctx, "p", event.NoStream, in)
	if err != nil || res.Version != 2 || len(res.Events) != 0 {
		t.Fatalf("retry: %+v, %v", res, err)
	}
	// Stored events are skipped, new ones appended.
	more := append([]event.Event{in[1]}, ev(3))
	res, err = s.Append(ctx, "p", event.Exactly(2), more)
	if err != nil || res.Version != 3 || len(res.Events) != 1 || res.Events[0].ID == in[1].ID {
		t.Fatalf("partly stored: %+v, %v", res, err)
	}
	if n := countRows(t, s, "events"); n != 3 {
		t.Errorf("%d events stored, want 3", n)
	}
	if n := countRows(t, s, "outbox"); n != 3 {
		t.Errorf("%d outbox rows, want 3", n)
	}
}

func TestBadInputStoresNothing(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := context.Background()
	nilData := evs(2)
	nilData[1].Data = nil
	otherStream := evs(2)
	otherStream[1].StreamID = "other"
	noType := evs(1)
	noType[0].Type = ""
	dupID := evs(2)
	dupID[0].ID = event.NewID()
	dupID[1].ID = dupID[0].ID
	negSchema := evs(1)
	negSchema[0].SchemaVersion = -1
	for _, tt := range []struct {
		name   string
		stream string
		exp    event.ExpectedVersion
		events []event.Event
		field  string
	}{
		{"empty stream", "", event.Any, evs(1), "stream"},
		{"no events", "p", event.Any, nil, "events"},
		{"nil data", "p", event.Any, nilData, "events[1].Data"},
		{"other stream", "p", event.Any, otherStream, "events[1].StreamID"},
		{"no type", "p", event.Any, noType, "events[0].Type"},
		{"duplicate ID", "p", event.Any, dupID, "events[1].ID"},
		{"negative schema", "p", event.Any, negSchema, "events[0].SchemaVersion"},
		{"Exactly(0)", "p", event.Exactly(0), evs(1), "expected version"},
	} {
		_, err := s.Append(ctx, tt.stream, tt.exp, tt.events)
		var ve *event.ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, event.ErrInvalidEvent) || ve.Field != tt.field {
			t.Errorf("%s: %v, want a validation error on %s", tt.name, err, tt.field)
		}
	}
	tx, err := s.DB().Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendTx(ctx, tx, "p", event.Any, nilData); !errors.Is(err, event.ErrInvalidEvent) {
		t.Errorf("AppendTx with nil data: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("the transaction is unusable after a validation error: %v", err)
	}
	if _, err := s.AppendTx(ctx, nil, "p", event.Any, evs(1)); !errors.Is(err, event.ErrInvalidEvent) {
		t.Errorf("AppendTx(nil tx): %v", err)
	}
	if _, err := load(t, s, "p", 1); !errors.Is(err, event.ErrStreamNotFound) {
		t.Errorf("after bad input: %v", err)
	}
	for _, table := range []string{"streams", "events", "outbox"} {
		if n := countRows(t, s, table); n != 0 {
			t.Errorf("%s has %d rows after bad input", table, n)
		}
	}
	if _, err := load(t, s, "", 1); !errors.Is(err, event.ErrInvalidEvent) {
		t.Errorf("Load(\"\"): %v", err)
	}
	if _, err := load(t, s, "p", 0); !errors.Is(err, event.ErrInvalidEvent) {
		t.Errorf("Load from 0: %v", err)
	}
	if _, err := s.ReadAll(ctx, event.Cursor{}, 0); !errors.Is(err, event.ErrInvalidEvent) {
		t.Errorf("ReadAll limit 0: %v", err)
	}
}

func TestAppendTxCommitsAndRollsBackWithTheCallersWrites(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := context.Background()
	if _, err := s.DB().Exec(`CREATE TABLE read_model (stream text PRIMARY KEY, n int)`); err != nil {
		t.Fatal(err)
	}
	appendWith := func(stream string, commit bool) {
		t.Helper()
		tx, err := s.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendTx(ctx, tx, stream, event.NoStream, evs(2)); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO read_model VALUES ($1, 2)`, stream); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	appendWith("kept", true)
	appendWith("dropped", false)

	var rows int
	if err := s.DB().QueryRow(`SELECT count(*) FROM read_model`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Errorf("read model has %d rows, want 1", rows)
	}
	if got, err := load(t, s, "kept", 1); err != nil || len(got) != 2 {
		t.Errorf("committed stream: %d events, %v", len(got), err)
	}
	if _, err := load(t, s, "dropped", 1); !errors.Is(err, event.ErrStreamNotFound) {
		t.Errorf("rolled-back stream: %v", err)
	}
	recs, err := s.Pending(ctx, 10)
	if err != nil || len(recs) != 2 {
		t.Fatalf("outbox after commit and rollback: %d records, %v", len(recs), err)
	}
	for _, r := range recs {
		if r.Event.StreamID != "kept" {
			t.Errorf("outbox holds an event of %s", r.Event.StreamID)
		}
	}

	// A conflict found before writing leaves the caller's tx usable.
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendTx(ctx, tx, "kept", event.NoStream, evs(1)); !errors.Is(err, event.ErrConcurrencyConflict) {
		t.Fatalf("conflict in tx: %v", err)
	}
	if _, err := s.AppendTx(ctx, tx, "kept", event.Exactly(2), evs(1)); err != nil {
		t.Fatalf("append after a conflict in the same tx: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentWritersToOneStream(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := context.Background()
	const writers, each = 8, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	conflicts := 0
	for range writers {
		wg.Go(func() {
			for range each {
				for {
					var cur int64
					if err := s.DB().QueryRow(`SELECT coalesce((SELECT version FROM cqrs_streams WHERE stream_id = 'hot'), 0)`).Scan(&cur); err != nil {
						t.Error(err)
						return
					}
					exp := event.NoStream
					if cur > 0 {
						exp = event.Exactly(cur)
					}
					_, err := s.Append(ctx, "hot", exp, evs(1))
					if err == nil {
						break
					}
					if !errors.Is(err, event.ErrConcurrencyConflict) {
						t.Error(err)
						return
					}
					mu.Lock()
					conflicts++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	got, err := load(t, s, "hot", 1)
	if err != nil || len(got) != writers*each {
		t.Fatalf("%d events, %v", len(got), err)
	}
	for i, e := range got {
		if e.Version != int64(i+1) {
			t.Fatalf("event %d has version %d", i, e.Version)
		}
	}
	t.Logf("%d conflicts retried", conflicts)

	// Any never conflicts.
	wg = sync.WaitGroup{}
	for range writers {
		wg.Go(func() {
			for range each {
				if _, err := s.Append(ctx, "any", event.Any, evs(2)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if got, err := load(t, s, "any", 1); err != nil || len(got) != 2*writers*each {
		t.Fatalf("Any: %d events, %v", len(got), err)
	}
}

func TestConcurrentRetriesOfTheSameAppend(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := context.Background()
	for round := range 10 {
		in := evs(2)
		in[0].ID, in[1].ID = event.NewID(), event.NewID()
		stream := fmt.Sprintf("dup-%d", round)
		var wg sync.WaitGroup
		for _, exp := range []event.ExpectedVersion{event.Any, event.Any, event.NoStream, event.Any} {
			wg.Go(func() {
				if _, err := s.Append(ctx, stream, exp, in); err != nil {
					t.Errorf("%s: %v", exp, err)
				}
			})
		}
		wg.Wait()
		if got, err := load(t, s, stream, 1); err != nil || len(got) != 2 {
			t.Fatalf("%s: %d events, %v", stream, len(got), err)
		}
	}
}

func TestUniqueVersionBackstopIsAConflict(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := context.Background()
	if _, err := s.Append(ctx, "p", event.NoStream, evs(2)); err != nil {
		t.Fatal(err)
	}
	// Corrupt the stream row so that only UNIQUE (stream_id, version)
	// stands between the append and a duplicate version.
	if _, err := s.DB().Exec(`UPDATE cqrs_streams SET version = 1 WHERE stream_id = 'p'`); err != nil {
		t.Fatal(err)
	}
	_, err := s.Append(ctx, "p", event.Exactly(1), evs(1))
	var ce *event.ConcurrencyError
	if !errors.As(err, &ce) || ce.Stream != "p" {
		t.Fatalf("got %v, want a *event.ConcurrencyError", err)
	}
	if n := countRows(t, s, "events"); n != 2 {
		t.Errorf("%d events", n)
	}
}

func TestLoadLongStream(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := context.Background()
	const n = 10_000
	for i := 0; i < n; i += 500 {
		exp := event.NoStream
		if i > 0 {
			exp = event.Exactly(int64(i))
		}
		if _, err := s.Append(ctx, "long", exp, evs(500)); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	got, err := load(t, s, "long", 1)
	if err != nil || len(got) != n {
		t.Fatalf("%d events, %v", len(got), err)
	}
	t.Logf("loaded %d events in %v", n, time.Since(start))
	for i, e := range got {
		if e.Version != int64(i+1) {
			t.Fatalf("event %d has version %d", i, e.Version)
		}
	}
	// Stopping early stops reading.
	seen := 0
	for _, err := range s.Load(ctx, "long", 1500) {
		if err != nil {
			t.Fatal(err)
		}
		if seen++; seen == 3 {
			break
		}
	}
	if got, _ := load(t, s, "long", n-10); len(got) != 11 {
		t.Errorf("load from %d: %d events", n-10, len(got))
	}
}

func TestReadAllWaitsForEarlierTransactions(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := context.Background()

	// slow takes its transaction ID and a position first, then commits
	// last.
	slow, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback()
	slowRes, err := s.AppendTx(ctx, slow, "slow", event.NoStream, evs(1))
	if err != nil {
		t.Fatal(err)
	}
	fastRes, err := s.Append(ctx, "fast", event.NoStream, evs(1))
	if err != nil {
		t.Fatal(err)
	}
	if fastRes.Events[0].Position <= slowRes.Events[0].Position {
		t.Fatalf("positions %d, %d: want fast after slow", slowRes.Events[0].Position, fastRes.Events[0].Position)
	}
	// While slow runs, the committed fast event is held back: returning it
	// would move a cursor past slow's event.
	got, err := s.ReadAll(ctx, event.Cursor{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("ReadAll returned %d events while an earlier transaction runs", len(got))
	}
	if err := slow.Commit(); err != nil {
		t.Fatal(err)
	}
	all := readAllEventually(t, s, 2)
	if len(all) != 2 || all[0].StreamID != "slow" || all[1].StreamID != "fast" {
		t.Fatalf("after commit: %+v", all)
	}
	if !all[0].Cursor().Less(all[1].Cursor()) || all[0].TxID != slowRes.Events[0].TxID {
		t.Errorf("cursors %+v, %+v", all[0].Cursor(), all[1].Cursor())
	}
	// Reading after the last cursor returns nothing more.
	if more, err := s.ReadAll(ctx, all[1].Cursor(), 10); err != nil || len(more) != 0 {
		t.Errorf("after the end: %d, %v", len(more), err)
	}
	// And after the first, exactly the second.
	if more, err := s.ReadAll(ctx, all[0].Cursor(), 10); err != nil || len(more) != 1 || more[0].ID != all[1].ID {
		t.Errorf("after the first: %+v, %v", more, err)
	}
}

func TestReadAllPagesInOrder(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := context.Background()
	var want []uuid.UUID
	for i := range 20 {
		res, err := s.Append(ctx, fmt.Sprintf("s-%d", i%3), event.Any, evs(3))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range res.Events {
			want = append(want, e.ID)
		}
	}
	all := readAllEventually(t, s, len(want))
	if len(all) != len(want) {
		t.Fatalf("%d events, want %d", len(all), len(want))
	}
	for i := range all {
		if all[i].ID != want[i] {
			t.Fatalf("event %d out of order", i)
		}
		if i > 0 && !all[i-1].Cursor().Less(all[i].Cursor()) {
			t.Fatalf("cursor %d not increasing", i)
		}
	}
}

func TestReadAllIgnoresTransactionsOfOtherDatabases(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := context.Background()
	other := pgtest.New(t)
	tx, err := other.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var xid string
	if err := tx.QueryRow(`SELECT pg_current_xact_id()::text`).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(ctx, "p", event.NoStream, evs(1))
	if err != nil {
		t.Fatal(err)
	}
	// The other database's transaction is older and still running, but it
	// cannot write here, so it must not hold the read back.
	got, err := s.ReadAll(ctx, event.Cursor{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != res.Events[0].ID {
		t.Fatalf("ReadAll with a transaction (xid %s) open in another database: %d events", xid, len(got))
	}
}
