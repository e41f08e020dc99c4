package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/testutil/pgtest"
)

// hiddenConn is a pgx stdlib connection that does not show itself as one,
// so the store reads through database/sql alone.
type hiddenConn struct{ driver.Conn }

type hiddenConnector struct{ url string }

func (c hiddenConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := stdlib.GetDefaultDriver().Open(c.url)
	if err != nil {
		return nil, err
	}
	return hiddenConn{conn}, nil
}

func (hiddenConnector) Driver() driver.Driver { return stdlib.GetDefaultDriver() }

// TestLoadAndReadAllSameThroughPgxAndDatabaseSQL: Load and ReadAll read
// rows through pgx itself when the driver is pgx's stdlib; the events must
// be the ones database/sql reads, field by field, with event types that
// alternate within a page, two stream types, metadata present and absent,
// and an empty payload.
func TestLoadAndReadAllSameThroughPgxAndDatabaseSQL(t *testing.T) {
	ctx := context.Background()
	pg := pgtest.New(t)
	native, err := New(pg.DB(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := native.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(hiddenConnector{pg.URL})
	t.Cleanup(func() { db.Close() })
	plain, err := New(db, Config{})
	if err != nil {
		t.Fatal(err)
	}
	md := event.Metadata{CorrelationID: "corr", CausationID: "cause", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		TraceState: "k=v", Extra: map[string]string{"tenant": "acme"}}
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
	if _, err := native.Append(ctx, "product-1", event.NoStream, batch); err != nil {
		t.Fatal(err)
	}
	if _, err := native.Append(ctx, "order-1", event.NoStream, []event.Event{{StreamType: "order", Type: "order.placed", Data: []byte(`{}`), Metadata: md}}); err != nil {
		t.Fatal(err)
	}
	collect := func(s *Store) []event.Event {
		var out []event.Event
		for e, err := range s.Load(ctx, "product-1", 2) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
		return out
	}
	got, want := collect(native), collect(plain)
	if len(got) != 2499 || !reflect.DeepEqual(got, want) {
		t.Fatalf("Load through pgx: %d events, through database/sql %d; equal: %v", len(got), len(want), reflect.DeepEqual(got, want))
	}
	for i, e := range got {
		v := i + 1 // batch index
		if e.Version != int64(v+1) || e.Type != batch[v].Type || e.StreamID != "product-1" || e.StreamType != "product" ||
			e.TxID == 0 || e.SchemaVersion != max(batch[v].SchemaVersion, 1) || string(e.Data) != string(batch[v].Data) ||
			!reflect.DeepEqual(e.Metadata, batch[v].Metadata) || e.RecordedAt.Location() != time.UTC {
			t.Fatalf("event %d = %+v, want type %s, metadata %+v", i, e, batch[v].Type, batch[v].Metadata)
		}
	}
	if got[1].Data == nil {
		t.Error("empty payload read as nil")
	}
	all, err := native.ReadAll(ctx, event.Cursor{}, 3000)
	if err != nil {
		t.Fatal(err)
	}
	allPlain, err := plain.ReadAll(ctx, event.Cursor{}, 3000)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2501 || !reflect.DeepEqual(all, allPlain) {
		t.Fatalf("ReadAll through pgx: %d events, through database/sql %d; equal: %v", len(all), len(allPlain), reflect.DeepEqual(all, allPlain))
	}
	if last := all[2500]; last.StreamID != "order-1" || last.StreamType != "order" || last.Type != "order.placed" || !reflect.DeepEqual(last.Metadata, md) {
		t.Errorf("last event = %+v", last)
	}
}
