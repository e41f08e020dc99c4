package sqlite_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// TestLoadPagesMatchReadAll: Load scans its own column list (no stream_id)
// and reuses repeated strings; its events must be ReadAll's, field by field,
// across pages, with alternating event types, metadata present and absent,
// and an empty payload.
func TestLoadPagesMatchReadAll(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, sqlite.Config{})
	md := event.Metadata{CorrelationID: "corr", CausationID: "cause", TraceState: "k=v", Extra: map[string]string{"tenant": "acme"}}
	var batch []event.Event
	for i := range 2500 { // three pages
		e := event.Event{StreamType: "product", Type: "product.renamed", Data: []byte(`{"n":1}`)}
		switch i % 3 {
		case 1:
			e.Type, e.SchemaVersion, e.Metadata = "product.priced", 2, md
		case 2:
			e.Type, e.Data = "product.touched", []byte{}
		}
		batch = append(batch, e)
	}
	if _, err := s.Append(ctx, "product-1", event.NoStream, batch); err != nil {
		t.Fatal(err)
	}
	var got []event.Event
	for e, err := range s.Load(ctx, "product-1", 1) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	want, err := s.ReadAll(ctx, event.Cursor{}, 3000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2500 || !reflect.DeepEqual(got, want) {
		t.Fatalf("Load: %d events, ReadAll %d; equal: %v", len(got), len(want), reflect.DeepEqual(got, want))
	}
	for i, e := range got {
		if e.Type != batch[i].Type || e.StreamID != "product-1" || e.StreamType != "product" ||
			string(e.Data) != string(batch[i].Data) || e.Data == nil || !reflect.DeepEqual(e.Metadata, batch[i].Metadata) {
			t.Fatalf("event %d = %+v, want type %s, metadata %+v", i, e, batch[i].Type, batch[i].Metadata)
		}
	}
}
