package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
)

func TestSnapshots(t *testing.T) {
	t.Parallel()
	s := newStore(t, Config{})
	ctx := context.Background()
	if _, ok, err := s.LoadSnapshot(ctx, "p"); ok || err != nil {
		t.Fatalf("no snapshot yet: ok=%v, %v", ok, err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	if err := s.SaveSnapshot(ctx, es.Snapshot{StreamID: "p", Version: 5, SchemaVersion: 2, Data: []byte(`{"v":5}`), CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.LoadSnapshot(ctx, "p")
	if err != nil || !ok || got.Version != 5 || got.SchemaVersion != 2 || string(got.Data) != `{"v":5}` ||
		!got.CreatedAt.Equal(at) || got.CreatedAt.Location() != time.UTC || got.StreamID != "p" {
		t.Fatalf("loaded %+v, ok=%v, %v", got, ok, err)
	}
	// A lower version does not overwrite a higher one.
	if err := s.SaveSnapshot(ctx, es.Snapshot{StreamID: "p", Version: 3, SchemaVersion: 2, Data: []byte(`{"v":3}`)}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.LoadSnapshot(ctx, "p"); got.Version != 5 {
		t.Errorf("lower version overwrote: %+v", got)
	}
	// The same version (a new schema version, say) and higher ones do.
	if err := s.SaveSnapshot(ctx, es.Snapshot{StreamID: "p", Version: 5, SchemaVersion: 3, Data: []byte(`{"v":"5b"}`)}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.LoadSnapshot(ctx, "p"); got.SchemaVersion != 3 || got.CreatedAt.IsZero() {
		t.Errorf("same version not replaced: %+v", got)
	}
	if err := s.SaveSnapshot(ctx, es.Snapshot{StreamID: "p", Version: 9, SchemaVersion: 3, Data: []byte(`{"v":9}`)}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.LoadSnapshot(ctx, "p"); got.Version != 9 {
		t.Errorf("higher version not stored: %+v", got)
	}
	for _, bad := range []es.Snapshot{
		{Version: 1, Data: []byte("x")},
		{StreamID: "p", Version: 0, Data: []byte("x")},
		{StreamID: "p", Version: 10},
	} {
		if err := s.SaveSnapshot(ctx, bad); !errors.Is(err, event.ErrInvalidEvent) {
			t.Errorf("SaveSnapshot(%+v): %v", bad, err)
		}
	}
	if got, _, _ := s.LoadSnapshot(ctx, "p"); got.Version != 9 {
		t.Errorf("bad input changed the snapshot: %+v", got)
	}
}
