package sqlite_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

func TestSnapshots(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, sqlite.Config{})

	if _, ok, err := s.LoadSnapshot(ctx, "p-1"); err != nil || ok {
		t.Fatalf("LoadSnapshot of none: ok=%v err=%v", ok, err)
	}
	at := time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)
	save := func(v int64, data string) {
		t.Helper()
		if err := s.SaveSnapshot(ctx, es.Snapshot{StreamID: "p-1", Version: v, SchemaVersion: 3, Data: []byte(data), CreatedAt: at}); err != nil {
			t.Fatalf("SaveSnapshot v%d: %v", v, err)
		}
	}
	check := func(v int64, data string) {
		t.Helper()
		got, ok, err := s.LoadSnapshot(ctx, "p-1")
		if err != nil || !ok {
			t.Fatalf("LoadSnapshot: ok=%v err=%v", ok, err)
		}
		if got.StreamID != "p-1" || got.Version != v || got.SchemaVersion != 3 || string(got.Data) != data || !got.CreatedAt.Equal(at) {
			t.Fatalf("LoadSnapshot = %+v, want version %d data %s at %v", got, v, data, at)
		}
	}
	save(10, `"ten"`)
	check(10, `"ten"`)
	save(20, `"twenty"`)
	check(20, `"twenty"`)
	save(15, `"fifteen"`) // older: never overwrites a higher version
	check(20, `"twenty"`)
	save(20, `"twenty again"`) // the same version may be rewritten
	check(20, `"twenty again"`)

	// A zero CreatedAt is set to now.
	if err := s.SaveSnapshot(ctx, es.Snapshot{StreamID: "p-2", Version: 1, Data: []byte{}}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.LoadSnapshot(ctx, "p-2")
	if err != nil || !ok || got.CreatedAt.IsZero() || time.Since(got.CreatedAt) > time.Minute || got.Data == nil {
		t.Errorf("p-2 snapshot %+v ok=%v err=%v", got, ok, err)
	}

	for _, bad := range []es.Snapshot{
		{Version: 1, Data: []byte(`{}`)},
		{StreamID: "p-3", Version: 0, Data: []byte(`{}`)},
		{StreamID: "p-3", Version: 1},
	} {
		if err := s.SaveSnapshot(ctx, bad); !errors.Is(err, event.ErrInvalidEvent) {
			t.Errorf("SaveSnapshot(%+v): %v, want a validation error", bad, err)
		}
	}
	if c := count(t, s, "cqrs_snapshots"); c != 2 {
		t.Errorf("%d snapshots stored, want 2", c)
	}
}
