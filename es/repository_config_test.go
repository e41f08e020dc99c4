package es_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store/memory"
)

// noBase is an aggregate whose embedded *Base was never set.
type noBase struct{ *es.Base }

func (noBase) Apply(any) error { return nil }

func TestNewRepositoryValidation(t *testing.T) {
	t.Parallel()
	newAccount := func() *Account { return &Account{} }
	store := memory.New()
	tests := []struct {
		name  string
		store event.Store
		reg   *event.Registry
		cfg   es.RepositoryConfig[*Account]
		want  []string // substrings of the error; none: valid
	}{
		{name: "minimal", cfg: es.RepositoryConfig[*Account]{New: newAccount, StreamType: "account"}},
		{name: "everything", cfg: es.RepositoryConfig[*Account]{New: newAccount, StreamType: "account",
			Snapshots: store, SnapshotPolicy: es.EveryN(10), SnapshotVersion: 3, UpdateRetries: es.NoRetries}},
		{name: "snapshots with default policy", cfg: es.RepositoryConfig[*Account]{New: newAccount, StreamType: "account", Snapshots: store}},
		{name: "empty config", cfg: es.RepositoryConfig[*Account]{},
			want: []string{"RepositoryConfig.New: required", "RepositoryConfig.StreamType: required"}},
		{name: "nil store and registry", store: nilStore, reg: nilRegistry,
			cfg:  es.RepositoryConfig[*Account]{New: newAccount, StreamType: "account"},
			want: []string{"store: required", "registry: required"}},
		{name: "New returns nil", cfg: es.RepositoryConfig[*Account]{New: func() *Account { return nil }, StreamType: "account"},
			want: []string{"RepositoryConfig.New: returned an unusable aggregate: es: aggregate is nil"}},
		{name: "New returns used aggregate", cfg: es.RepositoryConfig[*Account]{New: func() *Account {
			a := &Account{}
			_ = a.Open("1", "x")
			return a
		}, StreamType: "account"},
			want: []string{"RepositoryConfig.New: returned an aggregate at version 0 with 1 uncommitted events"}},
		{name: "space in stream type", cfg: es.RepositoryConfig[*Account]{New: newAccount, StreamType: "bank account"},
			want: []string{`RepositoryConfig.StreamType: "bank account" contains ' '`}},
		// A name the broker would refuse as a topic is refused here, so no
		// event of the type is undeliverable.
		{name: "colon in stream type", cfg: es.RepositoryConfig[*Account]{New: newAccount, StreamType: "order:line"},
			want: []string{`RepositoryConfig.StreamType: "order:line" contains ':'; a stream type is a broker topic`}},
		{name: "stream type ending in a dot", cfg: es.RepositoryConfig[*Account]{New: newAccount, StreamType: "order."},
			want: []string{`RepositoryConfig.StreamType: "order." ends with a dot`}},
		{name: "dotted stream type", cfg: es.RepositoryConfig[*Account]{New: newAccount, StreamType: "billing.invoice-v2"}},
		{name: "policy without store", cfg: es.RepositoryConfig[*Account]{New: newAccount, StreamType: "account", SnapshotPolicy: es.EveryN(5)},
			want: []string{"RepositoryConfig.SnapshotPolicy: set without Snapshots"}},
		{name: "EveryN(0)", cfg: es.RepositoryConfig[*Account]{New: newAccount, StreamType: "account", Snapshots: store, SnapshotPolicy: es.EveryN(0)},
			want: []string{"RepositoryConfig.SnapshotPolicy: EveryN(0): n must be >= 1"}},
		{name: "negative numbers", cfg: es.RepositoryConfig[*Account]{New: newAccount, StreamType: "account", SnapshotVersion: -1, UpdateRetries: -2},
			want: []string{"RepositoryConfig.SnapshotVersion: -1", "RepositoryConfig.UpdateRetries: -2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, reg := tt.store, tt.reg
			if st == nil {
				st = store
			} else if st == nilStore {
				st = nil
			}
			if reg == nil {
				reg = newRegistry()
			} else if reg == nilRegistry {
				reg = nil
			}
			repo, err := es.NewRepository(st, reg, tt.cfg)
			if len(tt.want) == 0 {
				if err != nil || repo == nil {
					t.Fatalf("NewRepository: %v", err)
				}
				return
			}
			if !errors.Is(err, es.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// Markers for "pass nil" in the table, where the zero value means "use a
// working one".
var (
	nilStore    event.Store = &memory.Store{}
	nilRegistry             = event.NewRegistry(nil)
)

func TestNewRepositoryBaseNotEmbeddedByValue(t *testing.T) {
	t.Parallel()
	_, err := es.NewRepository(memory.New(), newRegistry(), es.RepositoryConfig[noBase]{
		New: func() noBase { return noBase{} }, StreamType: "x"})
	if !errors.Is(err, es.ErrInvalidConfig) || !strings.Contains(err.Error(), "nil Base") {
		t.Fatalf("err = %v, want a nil Base config error", err)
	}
}
