package sqlite_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// newStore opens a migrated store on a fresh database file in t.TempDir().
func newStore(t testing.TB, cfg sqlite.Config) *sqlite.Store {
	t.Helper()
	s := openStore(t, cfg)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

// openStore opens a store without migrating it.
func openStore(t testing.TB, cfg sqlite.Config) *sqlite.Store {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newEvent(typ, data string) event.Event {
	return event.Event{ID: event.NewID(), Type: typ, Data: []byte(data)}
}

// loadAll collects a stream's events from version 1.
func loadAll(t testing.TB, s event.Store, stream string) []event.Event {
	t.Helper()
	var out []event.Event
	for e, err := range s.Load(context.Background(), stream, 1) {
		if err != nil {
			t.Fatalf("Load %s: %v", stream, err)
		}
		out = append(out, e)
	}
	return out
}

// count returns the number of rows in table.
func count(t testing.TB, s *sqlite.Store, table string) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}
