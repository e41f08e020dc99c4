package es_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store/memory"
)

func TestEveryN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n             es.EveryN
		last, version int64
		want          bool
	}{
		{5, 0, 4, false},
		{5, 0, 5, true},
		{5, 0, 12, true}, // no snapshot yet (or it was ignored): take one
		{5, 5, 9, false},
		{5, 5, 10, true},
		{5, 9, 11, true}, // crossed 10 since the last snapshot
		{5, 10, 14, false},
		{1, 3, 4, true},
		{0, 0, 100, false}, // invalid n never snapshots (and fails NewRepository)
	}
	for _, tt := range tests {
		if got := tt.n.ShouldSnapshot(tt.last, tt.version); got != tt.want {
			t.Errorf("EveryN(%d).ShouldSnapshot(%d, %d) = %v, want %v", tt.n, tt.last, tt.version, got, tt.want)
		}
	}
	f := es.SnapshotPolicyFunc(func(last, version int64) bool { return version-last >= 3 })
	if !f.ShouldSnapshot(2, 5) || f.ShouldSnapshot(2, 4) {
		t.Error("SnapshotPolicyFunc does not call its function")
	}
}

func snapshotOf(t *testing.T, store *memory.Store, stream string) es.Snapshot {
	t.Helper()
	s, ok, err := store.LoadSnapshot(t.Context(), stream)
	must(t, err)
	if !ok {
		t.Fatalf("no snapshot for %s", stream)
	}
	return s
}

func TestSnapshotTakenEveryN(t *testing.T) {
	t.Parallel()
	b := setup(t, withSnapshots(5))
	ctx := t.Context()
	acct := &Account{}
	must(t, acct.Open("n", "o"))
	must(t, b.repo.Save(ctx, acct))
	if _, ok, _ := b.store.LoadSnapshot(ctx, "account-n"); ok {
		t.Fatal("snapshot at version 1 with EveryN(5)")
	}
	var taken []int64
	for range 12 { // versions 2..13, one save each
		must(t, acct.Deposit(1))
		must(t, b.repo.Save(ctx, acct))
		if s, ok, _ := b.store.LoadSnapshot(ctx, "account-n"); ok && (len(taken) == 0 || taken[len(taken)-1] != s.Version) {
			taken = append(taken, s.Version)
		}
	}
	if fmt.Sprint(taken) != "[5 10]" {
		t.Fatalf("snapshots taken at %v, want [5 10]", taken)
	}
	s := snapshotOf(t, b.store, "account-n")
	var state struct {
		Owner   string
		Balance int64
	}
	must(t, json.Unmarshal(s.Data, &state))
	if s.SchemaVersion != 1 || state.Owner != "o" || state.Balance != 9 || s.StreamID != "account-n" || s.CreatedAt.IsZero() {
		t.Fatalf("snapshot %+v, state %+v", s, state)
	}

	// One save of three events crossing 15 snapshots at its end version.
	for range 3 {
		must(t, acct.Deposit(1))
	}
	must(t, b.repo.Save(ctx, acct))
	if s := snapshotOf(t, b.store, "account-n"); s.Version != 16 {
		t.Fatalf("snapshot at %d, want 16", s.Version)
	}
}

func TestSnapshotUsedOnLoad(t *testing.T) {
	t.Parallel()
	b := setup(t, withSnapshots(5))
	open(t, b.repo, "s", 12) // version 13, snapshot at 10

	got, err := b.repo.Load(t.Context(), "s")
	must(t, err)
	if got.applied != 3 {
		t.Fatalf("applied %d events, want 3 (versions 11-13 after the snapshot)", got.applied)
	}
	if got.ID() != "s" || got.Owner != "owner-s" || got.Balance != 12 || got.Version() != 13 {
		t.Fatalf("loaded id %q owner %q balance %d version %d", got.ID(), got.Owner, got.Balance, got.Version())
	}
	// A save from the snapshot-loaded aggregate continues the stream.
	must(t, got.Deposit(1))
	must(t, b.repo.Save(t.Context(), got))
	if got.Version() != 14 {
		t.Fatalf("version %d after save, want 14", got.Version())
	}
}

func TestSnapshotOfOtherSchemaVersionIgnored(t *testing.T) {
	t.Parallel()
	b := setup(t, withSnapshots(5))
	open(t, b.repo, "v", 12) // snapshot schema 1 at version 10

	logs := &logBuffer{}
	v2, err := es.NewRepository(b.store, b.reg, es.RepositoryConfig[*Account]{
		New: func() *Account { return &Account{} }, StreamType: "account",
		Snapshots: b.store, SnapshotPolicy: es.EveryN(5), SnapshotVersion: 2, Logger: newTestLogger(logs)})
	must(t, err)
	got, err := v2.Load(t.Context(), "v")
	must(t, err)
	if got.applied != 13 || got.Balance != 12 {
		t.Fatalf("applied %d balance %d, want a full replay of 13 events", got.applied, got.Balance)
	}
	logs.requireWarning(t, "another schema version")
	logs.requireWarning(t, "snapshot_schema_version=1")

	// The replay replaced it with a snapshot of the new schema version.
	if s := snapshotOf(t, b.store, "account-v"); s.SchemaVersion != 2 || s.Version != 13 {
		t.Fatalf("snapshot schema %d version %d, want 2 and 13", s.SchemaVersion, s.Version)
	}
	got, err = v2.Load(t.Context(), "v")
	must(t, err)
	if got.applied != 0 {
		t.Fatalf("second load applied %d events, want 0 (from the new snapshot)", got.applied)
	}
}

func TestBadSnapshotIgnored(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, data, warning string
	}{
		{"corrupt", `{"Owner": "o", "Bal`, "cannot be decoded"},
		{"not JSON", "\x00\x01", "cannot be decoded"},
		{"unknown field", `{"Owner":"o","Balance":1,"Overdraft":5}`, "unknown field"},
		{"wrong type", `{"Owner":"o","Balance":"lots"}`, "cannot be decoded"},
		{"trailing data", `{"Owner":"o","Balance":1} {}`, "trailing data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, withSnapshots(100))
			open(t, b.repo, "c", 4)
			must(t, b.store.SaveSnapshot(t.Context(), es.Snapshot{StreamID: "account-c", Version: 3, SchemaVersion: 1, Data: []byte(tt.data)}))
			got, err := b.repo.Load(t.Context(), "c")
			must(t, err)
			if got.applied != 5 || got.Balance != 4 || got.Owner != "owner-c" {
				t.Fatalf("applied %d balance %d owner %q, want a full replay", got.applied, got.Balance, got.Owner)
			}
			b.logs.requireWarning(t, tt.warning)
		})
	}
}

func TestSnapshotStoreFailures(t *testing.T) {
	t.Parallel()
	t.Run("load fails: replay", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withSnapshots(2), func(b *bundle, c *es.RepositoryConfig[*Account]) {
			c.Snapshots = failingSnapshots{SnapshotStore: b.store, failLoad: true}
		})
		open(t, b.repo, "l", 4)
		got, err := b.repo.Load(t.Context(), "l")
		must(t, err)
		if got.applied != 5 {
			t.Fatalf("applied %d, want a full replay of 5", got.applied)
		}
		b.logs.requireWarning(t, "cannot load snapshot")
	})
	t.Run("save fails: logged, save succeeds", func(t *testing.T) {
		t.Parallel()
		b := setup(t, withSnapshots(1), func(b *bundle, c *es.RepositoryConfig[*Account]) {
			c.Snapshots = failingSnapshots{SnapshotStore: b.store, failSave: true}
		})
		acct := &Account{}
		must(t, acct.Open("f", "o"))
		if err := b.repo.Save(t.Context(), acct); err != nil {
			t.Fatalf("Save returned the snapshot failure: %v", err)
		}
		if acct.Version() != 1 {
			t.Fatalf("version %d", acct.Version())
		}
		b.logs.requireWarning(t, "cannot save snapshot")
		b.logs.requireWarning(t, errSnapshotStore.Error())
		if _, err := b.repo.Load(t.Context(), "f"); err != nil {
			t.Fatalf("Load with a failing snapshot save: %v", err)
		}
	})
}

// counter keeps its state unexported and snapshots it by SnapshotMarshaler.
type counter struct {
	es.Base
	n       int
	applied int
	failEnc bool
}

type incremented struct{}

func (c *counter) Apply(data any) error {
	if _, ok := data.(incremented); !ok {
		return fmt.Errorf("counter: unexpected %T", data)
	}
	c.n++
	c.applied++
	return nil
}

func (c *counter) MarshalSnapshot() ([]byte, error) {
	if c.failEnc {
		return nil, errors.New("refusing to encode")
	}
	return []byte(strconv.Itoa(c.n)), nil
}

func (c *counter) UnmarshalSnapshot(data []byte) (err error) {
	c.n, err = strconv.Atoi(string(data))
	return err
}

func TestSnapshotMarshaler(t *testing.T) {
	t.Parallel()
	store := memory.New()
	reg := event.NewRegistry(nil)
	event.MustRegister[incremented](reg, "counter.incremented")
	logs := &logBuffer{}
	repo, err := es.NewRepository(store, reg, es.RepositoryConfig[*counter]{
		New: func() *counter { return &counter{} }, StreamType: "counter",
		Snapshots: store, SnapshotPolicy: es.EveryN(3), Logger: newTestLogger(logs)})
	must(t, err)
	c := &counter{}
	c.SetID("c")
	for range 4 {
		must(t, es.Raise(c, incremented{}))
	}
	must(t, repo.Save(t.Context(), c))
	if s := snapshotOf(t, store, "counter-c"); string(s.Data) != "4" {
		t.Fatalf("snapshot data %q, want %q", s.Data, "4")
	}
	got, err := repo.Load(t.Context(), "c")
	must(t, err)
	if got.n != 4 || got.applied != 0 {
		t.Fatalf("n %d applied %d, want 4 from the snapshot", got.n, got.applied)
	}

	got.failEnc = true
	for range 3 {
		must(t, es.Raise(got, incremented{}))
	}
	must(t, repo.Save(t.Context(), got)) // encoding fails: logged only
	logs.requireWarning(t, "refusing to encode")
}
