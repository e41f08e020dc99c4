package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

func TestAppendAndLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, sqlite.Config{})
	md := event.Metadata{CorrelationID: "corr-1", TraceParent: "00-abc-def-01", Extra: map[string]string{"user": "ann"}}
	in := []event.Event{
		{Type: "product.created", StreamType: "product", Data: []byte(`{"name":"pen"}`), Metadata: md},
		{Type: "product.renamed", StreamType: "product", SchemaVersion: 2, Data: []byte(`{"name":"ink"}`)},
		{Type: "product.emptied", StreamType: "product", Data: []byte{}},
	}
	before := time.Now()
	res, err := s.Append(ctx, "product-42", event.NoStream, in)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if res.Version != 3 || len(res.Events) != 3 {
		t.Fatalf("Append result: version %d, %d events; want 3, 3", res.Version, len(res.Events))
	}
	got := loadAll(t, s, "product-42")
	if len(got) != 3 {
		t.Fatalf("loaded %d events, want 3", len(got))
	}
	for i, e := range got {
		w := res.Events[i]
		if e.ID != w.ID || e.Version != int64(i+1) || e.Position != w.Position || e.Position == 0 ||
			e.StreamID != "product-42" || e.StreamType != "product" || e.Type != in[i].Type ||
			string(e.Data) != string(in[i].Data) || e.Data == nil || !e.RecordedAt.Equal(w.RecordedAt) {
			t.Errorf("event %d: loaded %+v, appended %+v", i, e, w)
		}
		if e.RecordedAt.Location() != time.UTC || e.RecordedAt.Before(before.Add(-time.Second)) {
			t.Errorf("event %d: RecordedAt %v not a recent UTC time", i, e.RecordedAt)
		}
		if e.RecordedAt.Nanosecond() == 0 && w.RecordedAt.Nanosecond() != 0 {
			t.Errorf("event %d: RecordedAt lost sub-second precision", i)
		}
	}
	if got[0].Metadata.CorrelationID != "corr-1" || got[0].Metadata.Extra["user"] != "ann" || got[0].Metadata.TraceParent != md.TraceParent {
		t.Errorf("metadata not round-tripped: %+v", got[0].Metadata)
	}
	if got[1].SchemaVersion != 2 || got[0].SchemaVersion != 1 {
		t.Errorf("schema versions %d, %d; want 1, 2", got[0].SchemaVersion, got[1].SchemaVersion)
	}

	// From a version, past the end, and a missing stream.
	var from2 []int64
	for e, err := range s.Load(ctx, "product-42", 2) {
		if err != nil {
			t.Fatal(err)
		}
		from2 = append(from2, e.Version)
	}
	if fmt.Sprint(from2) != "[2 3]" {
		t.Errorf("Load from 2: versions %v", from2)
	}
	for _, err := range s.Load(ctx, "product-42", 4) {
		t.Errorf("Load past the end yielded %v", err)
	}
	n := 0
	for _, err := range s.Load(ctx, "product-0", 1) {
		n++
		if !errors.Is(err, event.ErrStreamNotFound) || !strings.Contains(err.Error(), "product-0") {
			t.Errorf("Load of a missing stream: %v", err)
		}
	}
	if n != 1 {
		t.Errorf("Load of a missing stream yielded %d values, want 1", n)
	}
}

func TestLoadPagesLongStream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, sqlite.Config{})
	const n = 2503 // spans pages (1000) and insert chunks (500)
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = newEvent("t", fmt.Sprintf(`{"i":%d}`, i))
	}
	if _, err := s.Append(ctx, "long", event.NoStream, evs); err != nil {
		t.Fatal(err)
	}
	got := loadAll(t, s, "long")
	if len(got) != n {
		t.Fatalf("loaded %d events, want %d", len(got), n)
	}
	for i, e := range got {
		if e.Version != int64(i+1) || e.ID != evs[i].ID || (i > 0 && e.Position <= got[i-1].Position) {
			t.Fatalf("event %d: version %d position %d id %s", i, e.Version, e.Position, e.ID)
		}
	}
	if c := count(t, s, "cqrs_outbox"); c != n {
		t.Errorf("outbox has %d rows, want %d", c, n)
	}
	// Stopping early stops reading.
	seen := 0
	for range s.Load(ctx, "long", 1) {
		seen++
		if seen == 1500 {
			break
		}
	}
	if seen != 1500 {
		t.Errorf("early break after %d events", seen)
	}
}

func TestExpectedVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, sqlite.Config{})
	one := func() []event.Event { return []event.Event{newEvent("t", `{}`)} }
	mustConflict := func(name string, exp event.ExpectedVersion, actual int64) {
		t.Helper()
		_, err := s.Append(ctx, "s", exp, one())
		var ce *event.ConcurrencyError
		if !errors.Is(err, event.ErrConcurrencyConflict) || !errors.As(err, &ce) || ce.Actual != actual || ce.Stream != "s" {
			t.Errorf("%s: %v, want a conflict at actual %d", name, err, actual)
		}
	}
	mustConflict("StreamExists on empty", event.StreamExists, 0)
	mustConflict("Exactly(1) on empty", event.Exactly(1), 0)
	if _, err := s.Append(ctx, "s", event.NoStream, one()); err != nil {
		t.Fatal(err)
	}
	mustConflict("NoStream on existing", event.NoStream, 1)
	mustConflict("Exactly(2) at 1", event.Exactly(2), 1)
	for _, exp := range []event.ExpectedVersion{event.Exactly(1), event.StreamExists, event.Any} {
		if _, err := s.Append(ctx, "s", exp, one()); err != nil {
			t.Fatalf("Append %v: %v", exp, err)
		}
	}
	if got := len(loadAll(t, s, "s")); got != 4 {
		t.Errorf("stream has %d events, want 4", got)
	}
	if c := count(t, s, "cqrs_events"); c != 4 {
		t.Errorf("conflicts stored events: %d rows, want 4", c)
	}
}

func TestDuplicateIDsAreSkipped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, sqlite.Config{})
	a, b := newEvent("t", `"a"`), newEvent("t", `"b"`)
	if _, err := s.Append(ctx, "s", event.NoStream, []event.Event{a}); err != nil {
		t.Fatal(err)
	}
	// A retry of the whole append succeeds without checking the version.
	res, err := s.Append(ctx, "s", event.NoStream, []event.Event{a})
	if err != nil || len(res.Events) != 0 || res.Version != 1 {
		t.Fatalf("retry: %+v, %v; want a no-op at version 1", res, err)
	}
	// A partial retry stores only the new event, checked against the version.
	res, err = s.Append(ctx, "s", event.Exactly(1), []event.Event{a, b})
	if err != nil || len(res.Events) != 1 || res.Events[0].ID != b.ID || res.Version != 2 {
		t.Fatalf("partial retry: %+v, %v", res, err)
	}
	if c := count(t, s, "cqrs_outbox"); c != 2 {
		t.Errorf("outbox rows %d, want 2", c)
	}
}

func TestBadInputStoresNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, sqlite.Config{})
	dup := event.NewID()
	tests := []struct {
		name   string
		stream string
		exp    event.ExpectedVersion
		events []event.Event
	}{
		{"empty stream", "", event.Any, []event.Event{newEvent("t", `{}`)}},
		{"no events", "s", event.Any, nil},
		{"Exactly(0)", "s", event.Exactly(0), []event.Event{newEvent("t", `{}`)}},
		{"nil data after a good event", "s", event.Any, []event.Event{newEvent("t", `{}`), {Type: "t"}}},
		{"empty type", "s", event.Any, []event.Event{{Data: []byte(`{}`)}}},
		{"other stream", "s", event.Any, []event.Event{newEvent("t", `{}`), {StreamID: "x", Type: "t", Data: []byte(`{}`)}}},
		{"negative schema", "s", event.Any, []event.Event{{Type: "t", SchemaVersion: -1, Data: []byte(`{}`)}}},
		{"duplicate ID in one append", "s", event.Any, []event.Event{
			{ID: dup, Type: "t", Data: []byte(`1`)}, {ID: dup, Type: "t", Data: []byte(`2`)}}},
	}
	for _, tt := range tests {
		_, err := s.Append(ctx, tt.stream, tt.exp, tt.events)
		if !errors.Is(err, event.ErrInvalidEvent) {
			t.Errorf("%s: Append error %v, want ErrInvalidEvent", tt.name, err)
		}
		tx, terr := s.DB().BeginTx(ctx, nil)
		if terr != nil {
			t.Fatal(terr)
		}
		if _, err := s.AppendTx(ctx, tx, tt.stream, tt.exp, tt.events); !errors.Is(err, event.ErrInvalidEvent) {
			t.Errorf("%s: AppendTx error %v, want ErrInvalidEvent", tt.name, err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AppendTx(ctx, nil, "s", event.Any, []event.Event{newEvent("t", `{}`)}); !errors.Is(err, event.ErrInvalidEvent) {
		t.Errorf("AppendTx with a nil tx: %v, want ErrInvalidEvent", err)
	}
	for _, tbl := range []string{"cqrs_events", "cqrs_streams", "cqrs_outbox"} {
		if c := count(t, s, tbl); c != 0 {
			t.Errorf("%s has %d rows after bad input", tbl, c)
		}
	}
	if _, err := s.ReadAll(ctx, event.Cursor{}, 0); !errors.Is(err, event.ErrInvalidEvent) {
		t.Errorf("ReadAll limit 0: %v", err)
	}
	for _, err := range s.Load(ctx, "s", 0) {
		if !errors.Is(err, event.ErrInvalidEvent) {
			t.Errorf("Load from 0: %v", err)
		}
	}
}

func TestAppendTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, sqlite.Config{})
	if _, err := s.DB().Exec("CREATE TABLE notes (body TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	appendWithNote := func(stream, note string, commit bool) {
		t.Helper()
		tx, err := s.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO notes (body) VALUES (?)", note); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendTx(ctx, tx, stream, event.NoStream, []event.Event{newEvent("t", `{}`)}); err != nil {
			t.Fatalf("AppendTx: %v", err)
		}
		if commit {
			err = tx.Commit()
			s.Signal()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	appendWithNote("committed", "kept", true)
	appendWithNote("rolled-back", "lost", false)

	if got := len(loadAll(t, s, "committed")); got != 1 {
		t.Errorf("committed stream has %d events", got)
	}
	for _, err := range s.Load(ctx, "rolled-back", 1) {
		if !errors.Is(err, event.ErrStreamNotFound) {
			t.Errorf("rolled-back stream: %v, want ErrStreamNotFound", err)
		}
	}
	var notes string
	if err := s.DB().QueryRow("SELECT group_concat(body) FROM notes").Scan(&notes); err != nil {
		t.Fatal(err)
	}
	if notes != "kept" {
		t.Errorf("notes %q, want kept", notes)
	}
	if c := count(t, s, "cqrs_outbox"); c != 1 {
		t.Errorf("outbox rows %d, want 1 (rolled back with the append)", c)
	}
}

// A failed AppendTx leaves nothing of itself in the caller's transaction:
// committing anyway stores the caller's writes only.
func TestAppendTxFailureLeavesTxClean(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, sqlite.Config{})
	if _, err := s.Append(ctx, "s", event.NoStream, []event.Event{newEvent("t", `{}`)}); err != nil {
		t.Fatal(err)
	}

	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Take version 502 in the caller's transaction: the append's first
	// insert chunk (versions 2..501) succeeds, the second fails on
	// UNIQUE(stream_id, version). The savepoint must undo the first chunk.
	if _, err := tx.ExecContext(ctx, `INSERT INTO cqrs_events (id, stream_id, version, type, data, recorded_at)
		VALUES (?, 's', 502, 't', x'', 0)`, uuid.NewString()); err != nil {
		t.Fatal(err)
	}
	evs := make([]event.Event, 600)
	for i := range evs {
		evs[i] = newEvent("t", `{}`)
	}
	_, err = s.AppendTx(ctx, tx, "s", event.Exactly(1), evs)
	var ce *event.ConcurrencyError
	if !errors.As(err, &ce) {
		t.Fatalf("AppendTx over a taken version: %v, want *event.ConcurrencyError", err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM cqrs_events WHERE version = 502"); err != nil {
		t.Fatalf("tx unusable after a failed AppendTx: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if c := count(t, s, "cqrs_events"); c != 1 {
		t.Errorf("events rows %d, want 1", c)
	}
	if c := count(t, s, "cqrs_outbox"); c != 1 {
		t.Errorf("outbox rows %d, want 1", c)
	}
	var v int64
	if err := s.DB().QueryRow("SELECT version FROM cqrs_streams WHERE stream_id = 's'").Scan(&v); err != nil || v != 1 {
		t.Errorf("stream version %d (%v), want 1", v, err)
	}
}

func TestListenSignalsAfterAppend(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newStore(t, sqlite.Config{})
	a, err := s.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-a:
		t.Fatal("signal before any append")
	default:
	}
	// Many appends coalesce into one pending signal and never block.
	for i := range 5 {
		if _, err := s.Append(ctx, fmt.Sprint("s-", i), event.NoStream, []event.Event{newEvent("t", `{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	for name, ch := range map[string]<-chan struct{}{"a": a, "b": b} {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("subscriber %s: no signal after Append", name)
		}
		select {
		case <-ch:
			t.Errorf("subscriber %s: signals did not coalesce", name)
		default:
		}
	}
	// A no-op append (all IDs stored) and a failed one do not signal.
	e := newEvent("t", `{}`)
	if _, err := s.Append(ctx, "x", event.NoStream, []event.Event{e}); err != nil {
		t.Fatal(err)
	}
	<-a
	if _, err := s.Append(ctx, "x", event.NoStream, []event.Event{e}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "x", event.NoStream, []event.Event{newEvent("t", `{}`)}); err == nil {
		t.Fatal("want a conflict")
	}
	select {
	case <-a:
		t.Error("signal after an append that stored nothing")
	default:
	}
	// Signal wakes subscribers for AppendTx commits.
	s.Signal()
	select {
	case <-a:
	default:
		t.Error("no signal after Signal")
	}
	// After ctx ends, a subscriber no longer receives (context.AfterFunc
	// unsubscribes in its own goroutine, so allow it a moment).
	lctx, lcancel := context.WithCancel(ctx)
	c, _ := s.Listen(lctx)
	lcancel()
	for deadline := time.Now().Add(5 * time.Second); ; {
		s.Signal()
		select {
		case <-c:
			if time.Now().After(deadline) {
				t.Fatal("still signalled 5s after the Listen context ended")
			}
			time.Sleep(time.Millisecond)
			continue
		default:
		}
		break
	}
}

// TestConcurrentAppendsOneStream: 32 goroutines append to one stream with
// Exactly(n), retrying on conflicts. Every event is stored once, versions
// are 1..N without gaps, and no SQLITE_BUSY or raw driver error leaks.
func TestConcurrentAppendsOneStream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, sqlite.Config{})
	const writers, perWriter = 32, 5

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	ids := make([][]uuid.UUID, writers)
	for w := range writers {
		wg.Go(func() {
			var current int64
			for i := range perWriter {
				e := newEvent("t", fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))
				for {
					exp := event.NoStream
					if current > 0 {
						exp = event.Exactly(current)
					}
					// Half the writers use AppendTx in their own transaction.
					var res event.AppendResult
					var err error
					if w%2 == 0 {
						res, err = s.Append(ctx, "hot", exp, []event.Event{e})
					} else {
						res, err = appendInTx(ctx, s, "hot", exp, e)
					}
					var ce *event.ConcurrencyError
					if errors.As(err, &ce) {
						current = ce.Actual
						continue
					}
					if err != nil {
						errs <- fmt.Errorf("writer %d: %w", w, err)
						return
					}
					current = res.Version
					ids[w] = append(ids[w], e.ID)
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := loadAll(t, s, "hot")
	if len(got) != writers*perWriter {
		t.Fatalf("stream has %d events, want %d", len(got), writers*perWriter)
	}
	seen := map[uuid.UUID]bool{}
	for i, e := range got {
		if e.Version != int64(i+1) {
			t.Fatalf("event %d has version %d", i, e.Version)
		}
		if seen[e.ID] {
			t.Fatalf("event %s stored twice", e.ID)
		}
		seen[e.ID] = true
	}
	for w := range writers {
		for _, id := range ids[w] {
			if !seen[id] {
				t.Errorf("writer %d: event %s acknowledged but not stored", w, id)
			}
		}
	}
	if c := count(t, s, "cqrs_outbox"); c != writers*perWriter {
		t.Errorf("outbox rows %d, want %d", c, writers*perWriter)
	}
}

func appendInTx(ctx context.Context, s *sqlite.Store, stream string, exp event.ExpectedVersion, e event.Event) (event.AppendResult, error) {
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		return event.AppendResult{}, err
	}
	defer tx.Rollback()
	res, err := s.AppendTx(ctx, tx, stream, exp, []event.Event{e})
	if err != nil {
		return res, err
	}
	if err := tx.Commit(); err != nil {
		return event.AppendResult{}, err
	}
	s.Signal()
	return res, nil
}

func TestReadAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, sqlite.Config{})
	for i := range 5 {
		if _, err := s.Append(ctx, fmt.Sprint("s-", i%2), event.Any, []event.Event{newEvent("t", fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	var all []event.Event
	cur := event.Cursor{}
	for {
		page, err := s.ReadAll(ctx, cur, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		cur = page[len(page)-1].Cursor()
	}
	if len(all) != 5 {
		t.Fatalf("read %d events, want 5", len(all))
	}
	for i, e := range all {
		if string(e.Data) != fmt.Sprint(i) || e.TxID != 0 || (i > 0 && e.Position <= all[i-1].Position) {
			t.Errorf("event %d: data %s position %d txid %d", i, e.Data, e.Position, e.TxID)
		}
	}
}

// A caller's database with a pool of one connection, a common SQLite
// setting, must not deadlock: AppendTx never takes a second connection.
func TestNewWithSingleConnectionPool(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "one.db")
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	quiet := slog.New(slog.DiscardHandler)

	// A store on a migrated database whose statements are not prepared yet
	// (AppendTx first), then one that migrated itself.
	migrator, err := sqlite.New(db, sqlite.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := migrator.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	fresh, err := sqlite.New(db, sqlite.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range []*sqlite.Store{fresh, migrator} {
		stream := fmt.Sprint("one-", i)
		if _, err := appendInTx(ctx, s, stream, event.NoStream, newEvent("t", `{}`)); err != nil {
			t.Fatalf("AppendTx: %v", err)
		}
		if _, err := s.Append(ctx, stream, event.Exactly(1), []event.Event{newEvent("t", `{}`)}); err != nil {
			t.Fatalf("Append: %v", err)
		}
		if _, err := appendInTx(ctx, s, stream, event.Exactly(2), newEvent("t", `{}`)); err != nil {
			t.Fatalf("AppendTx after Append: %v", err)
		}
		if got := len(loadAll(t, s, stream)); got != 3 {
			t.Errorf("loaded %d events, want 3", got)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if err := db.PingContext(ctx); err != nil {
		t.Errorf("Close closed the caller's database: %v", err)
	}
}
