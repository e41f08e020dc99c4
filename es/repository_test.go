package es_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()

	acct := &Account{}
	must(t, acct.Open("a1", "alice"))
	must(t, acct.Deposit(50))
	must(t, acct.Withdraw(20))
	if acct.Version() != 0 || len(acct.Uncommitted()) != 3 {
		t.Fatalf("before save: version %d, %d uncommitted", acct.Version(), len(acct.Uncommitted()))
	}
	must(t, b.repo.Save(ctx, acct))
	if acct.Version() != 3 || len(acct.Uncommitted()) != 0 {
		t.Fatalf("after save: version %d, %d uncommitted; want 3, 0", acct.Version(), len(acct.Uncommitted()))
	}
	must(t, b.repo.Save(ctx, acct)) // nothing to save: no-op

	got, err := b.repo.Load(ctx, "a1")
	must(t, err)
	if got.ID() != "a1" || got.Owner != "alice" || got.Balance != 30 || got.Version() != 3 || len(got.Uncommitted()) != 0 {
		t.Fatalf("loaded %+v (id %q, version %d)", got, got.ID(), got.Version())
	}

	// Stored envelopes carry the stream, type and versions.
	var types []string
	for e, err := range b.store.Load(ctx, "account-a1", 1) {
		must(t, err)
		if e.StreamType != "account" || e.StreamID != "account-a1" {
			t.Errorf("event %d: stream type %q, stream %q", e.Version, e.StreamType, e.StreamID)
		}
		types = append(types, e.Type)
	}
	if want := []string{"account.opened", "account.deposited", "account.withdrawn"}; !reflect.DeepEqual(types, want) {
		t.Fatalf("types = %v, want %v", types, want)
	}

	// A loaded aggregate saves with Exactly(its version).
	must(t, got.Deposit(5))
	must(t, b.repo.Save(ctx, got))
	again, err := b.repo.Load(ctx, "a1")
	must(t, err)
	if again.Balance != 35 || again.Version() != 4 {
		t.Fatalf("after second save: balance %d version %d", again.Balance, again.Version())
	}
}

func TestLoadMissingStream(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.repo.Load(t.Context(), "nope")
	if !errors.Is(err, event.ErrStreamNotFound) || !strings.Contains(err.Error(), "account-nope") {
		t.Fatalf("err = %v, want ErrStreamNotFound naming account-nope", err)
	}
	_, err = b.repo.Load(t.Context(), "")
	if !errors.Is(err, event.ErrInvalidEvent) {
		t.Fatalf("empty id: err = %v, want a validation error", err)
	}
}

func TestSaveNewAggregateTwiceConflicts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	first, second := &Account{}, &Account{}
	must(t, first.Open("dup", "a"))
	must(t, second.Open("dup", "b"))
	must(t, b.repo.Save(ctx, first))
	err := b.repo.Save(ctx, second)
	if !errors.Is(err, event.ErrConcurrencyConflict) {
		t.Fatalf("err = %v, want a conflict (NoStream)", err)
	}
}

func TestSaveWithoutID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acct := &Account{}
	must(t, es.Raise(acct, AccountOpened{Owner: "x"}))
	err := b.repo.Save(t.Context(), acct)
	if err == nil || !strings.Contains(err.Error(), "SetID") {
		t.Fatalf("err = %v, want a missing-ID error", err)
	}
}

func TestSaveUnregisteredEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acct := &Account{}
	acct.SetID("u")
	type Unregistered struct{}
	// The payload type is checked at save, not at raise.
	must(t, es.Raise(&lenient{Account: acct}, Unregistered{}))
	err := b.repo.Save(t.Context(), acct)
	if !errors.Is(err, event.ErrUnknownEventType) {
		t.Fatalf("err = %v, want ErrUnknownEventType", err)
	}
	if len(acct.Uncommitted()) != 1 {
		t.Fatal("a failed save must keep the uncommitted events")
	}
}

// lenient accepts any event, to get an unregistered payload raised.
type lenient struct{ *Account }

func (l *lenient) Apply(any) error { return nil }

func TestStaleAggregateConflicts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	open(t, b.repo, "s", 0)

	a, err := b.repo.Load(ctx, "s")
	must(t, err)
	stale, err := b.repo.Load(ctx, "s")
	must(t, err)
	must(t, a.Deposit(10))
	must(t, b.repo.Save(ctx, a))

	must(t, stale.Deposit(99))
	err = b.repo.Save(ctx, stale)
	var ce *event.ConcurrencyError
	if !errors.Is(err, event.ErrConcurrencyConflict) || !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *ConcurrencyError", err)
	}
	if ce.Stream != "account-s" || ce.Actual != 2 {
		t.Fatalf("conflict detail: %+v", ce)
	}
	if stale.Version() != 1 || len(stale.Uncommitted()) != 1 {
		t.Fatalf("stale aggregate changed: version %d, %d uncommitted", stale.Version(), len(stale.Uncommitted()))
	}
	got, err := b.repo.Load(ctx, "s")
	must(t, err)
	if got.Balance != 10 {
		t.Fatalf("balance %d: the stale save must not be stored", got.Balance)
	}
}

func TestUpdateRetriesOnConflict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		retries   int
		conflicts int64
		wantCalls int64
		wantErr   bool
	}{
		{name: "no conflict", conflicts: 0, wantCalls: 1},
		{name: "two conflicts, default retries", conflicts: 2, wantCalls: 3},
		{name: "three conflicts, default retries", conflicts: 3, wantCalls: 4},
		{name: "gives up after default retries", conflicts: 100, wantCalls: 4, wantErr: true},
		{name: "NoRetries", retries: es.NoRetries, conflicts: 1, wantCalls: 1, wantErr: true},
		{name: "ten retries", retries: 10, conflicts: 7, wantCalls: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			open(t, b.repo, "u", 0)
			cs := &conflictStore{Store: b.store}
			cs.n.Store(tt.conflicts)
			repo, err := es.NewRepository(cs, b.reg, es.RepositoryConfig[*Account]{
				New: func() *Account { return &Account{} }, StreamType: "account", UpdateRetries: tt.retries})
			must(t, err)

			var calls int64
			got, err := repo.Update(t.Context(), "u", func(a *Account) error {
				calls++
				if a.Version() != 1 || len(a.Uncommitted()) != 0 {
					t.Errorf("attempt %d: not a fresh load: version %d, %d uncommitted", calls, a.Version(), len(a.Uncommitted()))
				}
				return a.Deposit(5)
			})
			if calls != tt.wantCalls {
				t.Errorf("command ran %d times, want %d", calls, tt.wantCalls)
			}
			if tt.wantErr {
				if !errors.Is(err, event.ErrConcurrencyConflict) {
					t.Fatalf("err = %v, want ErrConcurrencyConflict", err)
				}
				if want := fmt.Sprintf("gave up after %d attempts", tt.wantCalls); !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want it to say %q", err, want)
				}
				return
			}
			must(t, err)
			if got.Balance != 5 || got.Version() != 2 {
				t.Fatalf("got balance %d version %d", got.Balance, got.Version())
			}
		})
	}
}

func TestUpdateCommandErrorIsNotRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	open(t, b.repo, "e", 0)
	calls := 0
	_, err := b.repo.Update(t.Context(), "e", func(a *Account) error {
		calls++
		return a.Withdraw(1)
	})
	if !errors.Is(err, ErrInsufficientFunds) || calls != 1 {
		t.Fatalf("err = %v after %d calls, want ErrInsufficientFunds after 1", err, calls)
	}
	if _, err := b.repo.Update(t.Context(), "missing", func(*Account) error { return nil }); !errors.Is(err, event.ErrStreamNotFound) {
		t.Fatalf("missing aggregate: err = %v", err)
	}
}

// Concurrent writers on one real store: every Update that returns nil is in
// the stream exactly once, and none is lost.
func TestUpdateConcurrentWriters(t *testing.T) {
	t.Parallel()
	b := setup(t, func(_ *bundle, c *es.RepositoryConfig[*Account]) { c.UpdateRetries = 1000 })
	open(t, b.repo, "hot", 0)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				if _, err := b.repo.Update(t.Context(), "hot", func(a *Account) error { return a.Deposit(1) }); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	got, err := b.repo.Load(t.Context(), "hot")
	must(t, err)
	if got.Balance != writers*each || got.Version() != writers*each+1 {
		t.Fatalf("balance %d version %d, want %d and %d", got.Balance, got.Version(), writers*each, writers*each+1)
	}
}

func TestLoadAt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	open(t, b.repo, "h", 5) // version 1 opened, then balance 1..5 at versions 2..6

	for v := int64(1); v <= 6; v++ {
		got, err := b.repo.LoadAt(ctx, "h", v)
		must(t, err)
		if got.Version() != v || got.Balance != v-1 {
			t.Errorf("LoadAt(%d): version %d balance %d", v, got.Version(), got.Balance)
		}
	}
	if _, err := b.repo.LoadAt(ctx, "h", 7); !errors.Is(err, es.ErrVersionNotFound) || !strings.Contains(err.Error(), "stream is at version 6") {
		t.Errorf("LoadAt(7): err = %v, want ErrVersionNotFound", err)
	}
	for _, v := range []int64{0, -1} {
		if _, err := b.repo.LoadAt(ctx, "h", v); !errors.Is(err, event.ErrInvalidEvent) {
			t.Errorf("LoadAt(%d): err = %v, want a validation error", v, err)
		}
	}
	if _, err := b.repo.LoadAt(ctx, "none", 1); !errors.Is(err, event.ErrStreamNotFound) {
		t.Errorf("LoadAt on a missing stream: err = %v", err)
	}
}

func TestLoadAtWithSnapshots(t *testing.T) {
	t.Parallel()
	b := setup(t, withSnapshots(4))
	open(t, b.repo, "h", 9) // snapshots at 4 and 8; version 10
	snap, ok, err := b.store.LoadSnapshot(t.Context(), "account-h")
	must(t, err)
	if !ok || snap.Version != 8 {
		t.Fatalf("snapshot at %d (ok %v), want 8", snap.Version, ok)
	}
	for _, tc := range []struct{ at, wantApplied int64 }{
		{at: 3, wantApplied: 3},  // snapshot newer than the version: replay from 1
		{at: 8, wantApplied: 0},  // exactly the snapshot
		{at: 10, wantApplied: 2}, // snapshot plus two events
	} {
		got, err := b.repo.LoadAt(t.Context(), "h", tc.at)
		must(t, err)
		if got.Version() != tc.at || got.Balance != tc.at-1 || int64(got.applied) != tc.wantApplied {
			t.Errorf("LoadAt(%d): version %d balance %d applied %d; want applied %d",
				tc.at, got.Version(), got.Balance, got.applied, tc.wantApplied)
		}
	}
}

func TestLoadDecodeErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	open(t, b.repo, "d", 1)

	// An event type this registry does not know.
	_, err := b.store.Append(ctx, "account-d", event.Any, []event.Event{{Type: "account.frozen", Data: []byte(`{}`)}})
	must(t, err)
	_, err = b.repo.Load(ctx, "d")
	var de *event.DecodeError
	if !errors.As(err, &de) || !errors.Is(err, event.ErrUnknownEventType) || de.Version != 3 || !strings.Contains(err.Error(), "load account-d") {
		t.Fatalf("unknown type: err = %v, want a *DecodeError for version 3", err)
	}

	// A payload that does not decode.
	_, err = b.store.Append(ctx, "account-x", event.NoStream, []event.Event{{Type: "account.opened", Data: []byte(`{"Owner":`)}})
	must(t, err)
	_, err = b.repo.Load(ctx, "x")
	if !errors.As(err, &de) || !errors.Is(err, event.ErrDecode) || de.Stream != "account-x" {
		t.Fatalf("bad payload: err = %v, want a *DecodeError", err)
	}

	// An event Apply rejects: registered, but not an account event.
	type Other struct{}
	must(t, event.Register[Other](b.reg, "other"))
	_, err = b.store.Append(ctx, "account-y", event.NoStream, []event.Event{{Type: "other", Data: []byte(`{}`)}})
	must(t, err)
	if _, err = b.repo.Load(ctx, "y"); err == nil || !strings.Contains(err.Error(), "unexpected event") || !strings.Contains(err.Error(), "version 1") {
		t.Fatalf("apply error: err = %v", err)
	}
}

// An event stored under an old schema version is upcast on load.
func TestLoadUpcasts(t *testing.T) {
	t.Parallel()
	// Deposited is at schema version 2; version 1 stored {"Cents": n}.
	reg := event.NewRegistry(nil)
	event.MustRegister[AccountOpened](reg, "account.opened")
	must(t, event.RegisterVersion[Deposited](reg, "account.deposited", 2))
	must(t, reg.Upcast("account.deposited", 1, func(data []byte) ([]byte, error) {
		return []byte(strings.Replace(string(data), "Cents", "Amount", 1)), nil
	}))
	b := setup(t)
	_, err := b.store.Append(t.Context(), "account-old", event.NoStream, []event.Event{
		{Type: "account.opened", Data: []byte(`{"Owner":"o"}`)},
		{Type: "account.deposited", SchemaVersion: 1, Data: []byte(`{"Cents":7}`)},
	})
	must(t, err)
	repo, err := es.NewRepository(b.store, reg, es.RepositoryConfig[*Account]{New: func() *Account { return &Account{} }, StreamType: "account"})
	must(t, err)
	got, err := repo.Load(t.Context(), "old")
	must(t, err)
	if got.Balance != 7 {
		t.Fatalf("balance %d, want 7 from the upcast event", got.Balance)
	}
}

func TestRaise(t *testing.T) {
	t.Parallel()
	acct := &Account{}
	type Bogus struct{}
	if err := es.Raise(acct, Bogus{}); err == nil || !strings.Contains(err.Error(), "unexpected event") {
		t.Fatalf("err = %v, want Apply's error", err)
	}
	if n := len(acct.Uncommitted()); n != 0 {
		t.Fatalf("%d uncommitted after a failed Apply, want 0", n)
	}
	if err := es.Raise(acct, nil); err == nil {
		t.Fatal("nil payload: want an error")
	}
	var nilAcct *Account
	if err := es.Raise(nilAcct, Deposited{}); err == nil {
		t.Fatal("nil aggregate: want an error, not a panic")
	}
	must(t, es.Raise(acct, Deposited{Amount: 3}))
	if got := acct.Uncommitted(); !reflect.DeepEqual(got, []any{Deposited{Amount: 3}}) || acct.Balance != 3 {
		t.Fatalf("uncommitted %v balance %d", got, acct.Balance)
	}
	acct.Uncommitted()[0] = nil // a copy
	if acct.Uncommitted()[0] == nil {
		t.Fatal("Uncommitted must return a copy")
	}
}

func TestReplay(t *testing.T) {
	t.Parallel()
	acct := &Account{}
	must(t, es.Replay(acct, AccountOpened{Owner: "r"}, Deposited{Amount: 2}))
	if acct.Version() != 2 || acct.Balance != 2 || len(acct.Uncommitted()) != 0 {
		t.Fatalf("version %d balance %d uncommitted %d", acct.Version(), acct.Balance, len(acct.Uncommitted()))
	}
	type Bogus struct{}
	if err := es.Replay(acct, Bogus{}); err == nil || !strings.Contains(err.Error(), "version 3") {
		t.Fatalf("err = %v", err)
	}
}

func TestMetadataFromContext(t *testing.T) {
	t.Parallel()
	b := setup(t)
	md := event.Metadata{CorrelationID: "corr", CausationID: "cause", Extra: map[string]string{"tenant": "t1"}}
	ctx := es.WithMetadata(t.Context(), md)
	md.Extra["tenant"] = "changed after WithMetadata" // the context keeps its copy

	acct := &Account{}
	must(t, acct.Open("m", "o"))
	must(t, es.Raise(acct, Deposited{Amount: 1}, es.WithExtra("reason", "gift")))
	must(t, b.repo.Save(ctx, acct))

	var got []event.Metadata
	for e, err := range b.store.Load(ctx, "account-m", 1) {
		must(t, err)
		got = append(got, e.Metadata)
	}
	want := []event.Metadata{
		{CorrelationID: "corr", CausationID: "cause", Extra: map[string]string{"tenant": "t1"}},
		{CorrelationID: "corr", CausationID: "cause", Extra: map[string]string{"tenant": "t1", "reason": "gift"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("metadata\n got %+v\nwant %+v", got, want)
	}
	if ctxMD := es.MetadataFrom(ctx); len(ctxMD.Extra) != 1 {
		t.Fatalf("per-event extra leaked into the context's metadata: %+v", ctxMD)
	}
	if got := es.MetadataFrom(t.Context()); !reflect.DeepEqual(got, event.Metadata{}) {
		t.Fatalf("a context without metadata gave %+v, want the zero Metadata", got)
	}
}

func TestTraceContextOnEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(t.Context(), sc)
	acct := &Account{}
	must(t, acct.Open("tr", "o"))
	must(t, b.repo.Save(ctx, acct))
	for e, err := range b.store.Load(ctx, "account-tr", 1) {
		must(t, err)
		if want := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"; e.Metadata.TraceParent != want {
			t.Fatalf("traceparent %q, want %q", e.Metadata.TraceParent, want)
		}
	}

	// Metadata that already has a trace parent keeps it.
	ctx = es.WithMetadata(ctx, event.Metadata{TraceParent: "00-11111111111111111111111111111111-2222222222222222-01"})
	must(t, acct.Deposit(1))
	must(t, b.repo.Save(ctx, acct))
	for e, err := range b.store.Load(ctx, "account-tr", 2) {
		must(t, err)
		if !strings.HasPrefix(e.Metadata.TraceParent, "00-1111") {
			t.Fatalf("traceparent %q was overwritten", e.Metadata.TraceParent)
		}
	}
}

// A command that derives its event ID is idempotent: saving the same event
// again, even as a "new" aggregate, appends nothing.
func TestWithEventIDIsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := uuid.MustParse("0190a000-0000-7000-8000-000000000001")
	for range 2 {
		acct := &Account{}
		acct.SetID("idem")
		must(t, es.Raise(acct, AccountOpened{Owner: "o"}, es.WithEventID(id)))
		must(t, b.repo.Save(t.Context(), acct))
		if acct.Version() != 1 {
			t.Fatalf("version %d after save, want 1", acct.Version())
		}
	}
	n := 0
	for e, err := range b.store.Load(t.Context(), "account-idem", 1) {
		must(t, err)
		if e.ID != id {
			t.Fatalf("event ID %s, want %s", e.ID, id)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("%d events stored, want 1", n)
	}
}

func TestSaveTxNeedsTxStore(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acct := &Account{}
	must(t, acct.Open("tx", "o"))
	if err := b.repo.SaveTx(t.Context(), nil, acct); !errors.Is(err, es.ErrTxUnsupported) {
		t.Fatalf("SaveTx: err = %v, want ErrTxUnsupported", err)
	}
	if _, err := b.repo.UpdateTx(t.Context(), nil, "tx", func(*Account) error { return nil }); !errors.Is(err, es.ErrTxUnsupported) {
		t.Fatalf("UpdateTx: err = %v, want ErrTxUnsupported", err)
	}
}

func TestSaveTx(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ts := &txStore{Store: b.store}
	repo, err := es.NewRepository(ts, b.reg, es.RepositoryConfig[*Account]{
		New: func() *Account { return &Account{} }, StreamType: "account",
		Snapshots: b.store, SnapshotPolicy: es.EveryN(1)})
	must(t, err)
	db := sql.OpenDB(fakeConnector{})
	t.Cleanup(func() { _ = db.Close() })
	tx, err := db.BeginTx(t.Context(), nil)
	must(t, err)
	defer func() { _ = tx.Rollback() }()

	acct := &Account{}
	must(t, acct.Open("tx", "o"))
	if err := repo.SaveTx(t.Context(), nil, acct); err == nil || !strings.Contains(err.Error(), "tx is nil") {
		t.Fatalf("nil tx: err = %v", err)
	}
	must(t, repo.SaveTx(t.Context(), tx, acct))
	if ts.txs != 1 || acct.Version() != 1 || len(acct.Uncommitted()) != 0 {
		t.Fatalf("AppendTx calls %d, version %d, uncommitted %d", ts.txs, acct.Version(), len(acct.Uncommitted()))
	}
	if _, ok, _ := b.store.LoadSnapshot(t.Context(), "account-tx"); ok {
		t.Fatal("SaveTx must not snapshot: the transaction may roll back")
	}
	got, err := repo.UpdateTx(t.Context(), tx, "tx", func(a *Account) error { return a.Deposit(4) })
	must(t, err)
	if ts.txs != 2 || got.Version() != 2 || got.Balance != 4 {
		t.Fatalf("UpdateTx: AppendTx calls %d, version %d, balance %d", ts.txs, got.Version(), got.Balance)
	}
	// The next Load takes the snapshot the transactional saves skipped.
	_, err = repo.Load(t.Context(), "tx")
	must(t, err)
	if s, ok, _ := b.store.LoadSnapshot(t.Context(), "account-tx"); !ok || s.Version != 2 {
		t.Fatalf("after Load: snapshot %v at %d, want one at 2", ok, s.Version)
	}
}

// txStore is an event.TxStore whose AppendTx appends outside the
// transaction: enough to test the repository's side of SaveTx.
type txStore struct {
	event.Store
	txs int
}

func (s *txStore) Committed() {}

func (s *txStore) AppendTx(ctx context.Context, tx *sql.Tx, stream string, expected event.ExpectedVersion, events []event.Event) (event.AppendResult, error) {
	if tx == nil {
		return event.AppendResult{}, errors.New("nil tx")
	}
	s.txs++
	return s.Append(ctx, stream, expected, events)
}

func (s *txStore) DB() *sql.DB { return nil }

// fakeConnector is a database/sql driver that supports only transactions
// that do nothing, so the test can hold a real *sql.Tx.
type fakeConnector struct{}

func (fakeConnector) Connect(context.Context) (driver.Conn, error) { return fakeConn{}, nil }
func (fakeConnector) Driver() driver.Driver                        { return nil }

type fakeConn struct{}

func (fakeConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("not supported") }
func (fakeConn) Close() error                        { return nil }
func (fakeConn) Begin() (driver.Tx, error)           { return fakeConn{}, nil }
func (fakeConn) Commit() error                       { return nil }
func (fakeConn) Rollback() error                     { return nil }

func TestCreate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	got, err := b.repo.Create(ctx, "c1", func(a *Account) error {
		if a.ID() != "c1" {
			t.Errorf("ID %q inside Create, want c1", a.ID())
		}
		if err := es.Raise(a, AccountOpened{Owner: "o"}); err != nil {
			return err
		}
		return a.Deposit(3)
	})
	must(t, err)
	if got.Version() != 2 || got.Balance != 3 {
		t.Fatalf("created version %d balance %d", got.Version(), got.Balance)
	}
	_, err = b.repo.Create(ctx, "c1", func(a *Account) error { return es.Raise(a, AccountOpened{Owner: "again"}) })
	if !errors.Is(err, event.ErrConcurrencyConflict) {
		t.Fatalf("second Create: err = %v, want a conflict", err)
	}
	if _, err := b.repo.Create(ctx, "c2", func(a *Account) error { return a.Withdraw(1) }); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("failing command: err = %v", err)
	}
	if _, err := b.repo.Load(ctx, "c2"); !errors.Is(err, event.ErrStreamNotFound) {
		t.Fatalf("a failed Create stored something: %v", err)
	}
	if _, err := b.repo.Create(ctx, "", func(*Account) error { return nil }); !errors.Is(err, event.ErrInvalidEvent) {
		t.Fatalf("empty id: err = %v", err)
	}
}

// A retried Update whose command raises the same event ID must return the
// stored state: the store skips the event, so applying it again in memory
// would show it twice (balance 20 while 10 is stored).
func TestUpdateRetriedWithSameEventIDReturnsStoredState(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	open(t, b.repo, "retry", 0)
	cmdID := uuid.MustParse("0190a000-0000-7000-8000-0000000000aa")
	deposit := func(a *Account) error { return es.Raise(a, Deposited{Amount: 10}, es.WithEventID(cmdID)) }
	for attempt := 1; attempt <= 2; attempt++ {
		got, err := b.repo.Update(ctx, "retry", deposit)
		must(t, err)
		if got.Balance != 10 || got.Version() != 2 {
			t.Fatalf("Update attempt %d returned balance %d at version %d, want the stored 10 at version 2", attempt, got.Balance, got.Version())
		}
		// The returned aggregate is usable: its next save is checked
		// against the stream as usual.
		if attempt == 2 {
			must(t, got.Deposit(1))
			must(t, b.repo.Save(ctx, got))
		}
	}
	stored, err := b.repo.Load(ctx, "retry")
	must(t, err)
	if stored.Balance != 11 || stored.Version() != 3 {
		t.Fatalf("stored balance %d at version %d, want 11 at 3", stored.Balance, stored.Version())
	}

	// Save of an instance whose events were skipped: it succeeds (nothing
	// to append), but the instance is marked, and its next save fails
	// instead of appending on top of a state that is not the stream's.
	acct, err := b.repo.Load(ctx, "retry")
	must(t, err)
	must(t, es.Raise(acct, Deposited{Amount: 10}, es.WithEventID(cmdID)))
	must(t, b.repo.Save(ctx, acct))
	must(t, acct.Deposit(5))
	if err := b.repo.Save(ctx, acct); !errors.Is(err, event.ErrConcurrencyConflict) || !strings.Contains(err.Error(), "load it again") {
		t.Fatalf("save of an instance that re-applied a stored event: %v, want a conflict saying to load it again", err)
	}
	// Create retried with a fixed event ID returns the stored state too.
	openID := uuid.MustParse("0190a000-0000-7000-8000-0000000000bb")
	create := func(a *Account) error {
		if err := es.Raise(a, AccountOpened{Owner: "o"}, es.WithEventID(openID)); err != nil {
			return err
		}
		return es.Raise(a, Deposited{Amount: 7}, es.WithEventID(uuid.NewSHA1(openID, []byte("deposit"))))
	}
	for range 2 {
		got, err := b.repo.Create(ctx, "created", create)
		must(t, err)
		if got.Balance != 7 || got.Version() != 2 {
			t.Fatalf("Create returned balance %d at version %d, want 7 at 2", got.Balance, got.Version())
		}
	}
}

// A retryable store error (a PostgreSQL serialization failure) makes
// Update run its cycle again, like a conflict.
func TestUpdateRetriesRetryableErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	open(t, b.repo, "ser", 0)
	rs := &retryableStore{Store: b.store}
	rs.n.Store(2)
	repo, err := es.NewRepository(rs, b.reg, es.RepositoryConfig[*Account]{New: func() *Account { return &Account{} }, StreamType: "account"})
	must(t, err)
	got, err := repo.Update(t.Context(), "ser", func(a *Account) error { return a.Deposit(3) })
	must(t, err)
	if got.Balance != 3 || rs.appends.Load() != 3 {
		t.Fatalf("balance %d after %d appends, want 3 after 3", got.Balance, rs.appends.Load())
	}
}

type retryableStore struct {
	event.Store
	n, appends atomic.Int64
}

func (s *retryableStore) Append(ctx context.Context, stream string, expected event.ExpectedVersion, events []event.Event) (event.AppendResult, error) {
	s.appends.Add(1)
	if s.n.Add(-1) >= 0 {
		return event.AppendResult{}, fmt.Errorf("append to stream %s: %w: SQLSTATE 40001", stream, event.ErrRetryable)
	}
	return s.Store.Append(ctx, stream, expected, events)
}
