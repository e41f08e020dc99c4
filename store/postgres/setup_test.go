package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/testutil/pgtest"
)

// newStore returns a migrated store on a fresh database.
func newStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	pg := pgtest.New(t)
	s, err := New(pg.DB(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// ev returns a valid event with payload i.
func ev(i int) event.Event {
	return event.Event{
		StreamType: "product",
		Type:       "product.renamed",
		Data:       fmt.Appendf(nil, `{"n":%d}`, i),
	}
}

func evs(n int) []event.Event {
	out := make([]event.Event, n)
	for i := range out {
		out[i] = ev(i)
	}
	return out
}

// load collects a stream.
func load(t testing.TB, s *Store, stream string, from int64) ([]event.Event, error) {
	t.Helper()
	var out []event.Event
	for e, err := range s.Load(context.Background(), stream, from) {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

// readAllEventually reads the whole log, waiting up to 10s for at least
// want events: transactions anywhere on the server (other tests' too) hold
// back the gap-safe horizon for a moment.
func readAllEventually(t testing.TB, s *Store, want int) []event.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var all []event.Event
		var cur event.Cursor
		for {
			batch, err := s.ReadAll(context.Background(), cur, 500)
			if err != nil {
				t.Fatal(err)
			}
			if len(batch) == 0 {
				break
			}
			all = append(all, batch...)
			cur = batch[len(batch)-1].Cursor()
		}
		if len(all) >= want || time.Now().After(deadline) {
			return all
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func countRows(t testing.TB, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRow(`SELECT count(*) FROM ` + s.Table(table)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
