//go:build unix

package main

import (
	"testing"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/sample/domain"
)

// world is a small, consistent outcome of a run: three products (one the
// poison), their events, read models, marks, dead letter and broker log,
// as a correct sample leaves them.
type world struct {
	s          *snapshot
	x          expect
	p1, p2, p3 string
	ids        map[string]uuid.UUID // correlation ID -> event ID
}

func newWorld(t *testing.T) *world {
	t.Helper()
	reg := domain.NewRegistry()
	w := &world{
		s: &snapshot{products: map[string]productRow{}, alerts: map[uuid.UUID]alertRow{}, stats: map[string]statsRow{},
			marks: map[string]map[uuid.UUID]bool{productsHandler: {}, alertsHandler: {}}, broker: &brokerLog{}},
		x:  expect{corrPrefix: "r-", poison: "poison", threshold: 5, ambiguous: map[string]kind{}},
		p1: uuid.NewString(), p2: uuid.NewString(), p3: uuid.NewString(),
		ids: map[string]uuid.UUID{},
	}
	add := func(product string, version int64, data any, a ack) {
		e, err := reg.NewEvent(data, event.Metadata{CorrelationID: a.corr})
		if err != nil {
			t.Fatal(err)
		}
		e.StreamID, e.StreamType, e.Version, e.Position = "product-"+product, "product", version, int64(len(w.s.events)+1)
		w.s.events = append(w.s.events, e)
		w.ids[a.corr] = e.ID
		a.product, a.version = product, version
		w.x.acks = append(w.x.acks, a)
		w.s.marks[alertsHandler][e.ID] = true
		if product != w.p3 {
			w.s.marks[productsHandler][e.ID] = true
		}
		w.s.broker.msgs = append(w.s.broker.msgs, brokerMsg{seq: uint64(e.Position), id: e.ID, stream: e.StreamID, version: version})
	}
	add(w.p1, 1, domain.Created{Name: "a", SKU: "A", PriceCents: 100, Stock: 6}, ack{corr: "r-1", kind: kindCreate, name: "a", sku: "A", price: 100, stock: 6})
	add(w.p2, 1, domain.Created{Name: "b", SKU: "B", PriceCents: 300, Stock: 1}, ack{corr: "r-2", kind: kindCreate, name: "b", sku: "B", price: 300, stock: 1})
	add(w.p1, 2, domain.StockAdjusted{Delta: -2, Stock: 4}, ack{corr: "r-3", kind: kindStock, delta: -2})
	add(w.p3, 1, domain.Created{Name: "poison", SKU: "P", PriceCents: 1, Stock: 0}, ack{corr: "r-4", kind: kindCreate, name: "poison", sku: "P", price: 1})
	add(w.p1, 3, domain.PriceChanged{PriceCents: 200, Previous: 100}, ack{corr: "r-5", kind: kindPrice, price: 200})
	add(w.p2, 2, domain.Renamed{Name: "b2"}, ack{corr: "r-6", kind: kindRename, name: "b2"})
	add(w.p2, 3, domain.Discontinued{}, ack{corr: "r-7", kind: kindDiscontinue})

	w.s.products[w.p1] = productRow{"a", "A", 200, 4, false, 3}
	w.s.products[w.p2] = productRow{"b2", "B", 300, 1, true, 3}
	w.s.stats[w.p1] = statsRow{200, 4, false}
	w.s.stats[w.p2] = statsRow{300, 1, true}
	w.s.stats[w.p3] = statsRow{1, 0, false}
	w.s.alerts[w.ids["r-3"]] = alertRow{w.p1, 4, 2}
	w.s.dead = []deadLetter{{handler: productsHandler, event: w.ids["r-4"], err: "poison"}}
	return w
}

func TestCheckClean(t *testing.T) {
	w := newWorld(t)
	v := check(w.s, w.x)
	if !v.clean() || v.poison != 1 || v.alerts != 1 || v.events != 7 || v.products != 3 {
		t.Fatalf("a consistent world: %+v", v)
	}
}

// TestCheckFinds breaks the consistent world in one way each and wants the
// checks to notice, and to count it right.
func TestCheckFinds(t *testing.T) {
	tests := []struct {
		name                 string
		breakIt              func(w *world)
		lost, dup, violation int
	}{
		{"acknowledged command missing", func(w *world) {
			w.x.acks = append(w.x.acks, ack{corr: "r-9", kind: kindStock, product: w.p1, version: 4, delta: 1})
		}, 1, 0, 0},
		{"acknowledged at another version", func(w *world) { w.x.acks[2].version = 3 }, 1, 0, 0},
		{"stored with other data", func(w *world) { w.x.acks[2].delta = 5 }, 1, 0, 0},
		{"command stored twice", func(w *world) {
			e := w.s.events[2] // r-3
			e.ID, e.Version, e.Data = uuid.New(), 4, []byte(`{"delta":-2,"stock":2}`)
			w.s.events = append(w.s.events, e)
			w.s.products[w.p1] = productRow{"a", "A", 200, 2, false, 4}
			w.s.stats[w.p1] = statsRow{200, 2, false}
			w.s.marks[productsHandler][e.ID], w.s.marks[alertsHandler][e.ID] = true, true
			w.s.broker.msgs = append(w.s.broker.msgs, brokerMsg{seq: 8, id: e.ID, stream: e.StreamID, version: 4})
		}, 0, 1, 0},
		{"read model behind", func(w *world) { w.s.products[w.p1] = productRow{"a", "A", 100, 4, false, 2} }, 1, 0, 0},
		{"read model ahead", func(w *world) { w.s.products[w.p1] = productRow{"a", "A", 200, 4, false, 5} }, 0, 2, 0},
		{"read model wrong", func(w *world) { w.s.products[w.p1] = productRow{"a", "A", 200, 5, false, 3} }, 1, 0, 0},
		{"read model row missing", func(w *world) { delete(w.s.products, w.p2) }, 3, 0, 0},
		{"phantom product", func(w *world) { w.s.products[uuid.NewString()] = productRow{version: 1} }, 0, 1, 0},
		{"poison applied", func(w *world) { w.s.products[w.p3] = productRow{"poison", "P", 1, 0, false, 1} }, 0, 1, 0},
		{"poison marked handled", func(w *world) { w.s.marks[productsHandler][w.ids["r-4"]] = true }, 0, 1, 0},
		{"mark missing", func(w *world) { delete(w.s.marks[alertsHandler], w.ids["r-6"]) }, 1, 0, 0},
		{"mark for no event", func(w *world) { w.s.marks[productsHandler][uuid.New()] = true }, 0, 1, 0},
		{"alert missing", func(w *world) { clear(w.s.alerts) }, 1, 0, 0},
		{"alert extra", func(w *world) { w.s.alerts[w.ids["r-5"]] = alertRow{w.p1, 4, 3} }, 0, 1, 0},
		{"stats wrong", func(w *world) { w.s.stats[w.p3] = statsRow{1, 1, false} }, 1, 0, 0},
		{"poison not dead-lettered", func(w *world) { w.s.dead = nil }, 1, 0, 0},
		{"another dead letter", func(w *world) {
			w.s.dead = append(w.s.dead, deadLetter{handler: alertsHandler, event: w.ids["r-3"], err: "boom"})
		}, 1, 0, 0},
		{"broker out of order", func(w *world) {
			m := w.s.broker.msgs
			m[2], m[4] = m[4], m[2] // p1 v3 before v2
		}, 0, 0, 1},
		{"broker republished: fine", func(w *world) { w.s.broker.msgs = append(w.s.broker.msgs, w.s.broker.msgs[0]) }, 0, 0, 0},
		{"never published", func(w *world) { w.s.broker.msgs = w.s.broker.msgs[1:] }, 1, 0, 0},
		{"outbox not drained", func(w *world) { w.s.outbox = 2 }, 0, 0, 1},
		{"stock chain broken", func(w *world) { w.s.events[2].Data = []byte(`{"delta":-2,"stock":3}`) }, 2, 0, 1},
		{"gap in a stream", func(w *world) { w.s.events[4].Version = 4 }, 0, 0, 1},
		{"foreign correlation ID", func(w *world) { w.s.events[0].Metadata.CorrelationID = "x-1" }, 1, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			tt.breakIt(w)
			v := check(w.s, w.x)
			if v.lost() != tt.lost || v.dup != tt.dup || v.violations != tt.violation {
				t.Errorf("lost %d, duplicated %d, violations %d; want %d, %d, %d\n%q",
					v.lost(), v.dup, v.violations, tt.lost, tt.dup, tt.violation, v.problems)
			}
			if tt.lost+tt.dup+tt.violation > 0 && len(v.problems) == 0 {
				t.Error("no problem line")
			}
		})
	}
}

// TestCheckNoop: a price change to the current price is acknowledged at
// the current version and stores nothing; that is not a loss.
func TestCheckNoop(t *testing.T) {
	w := newWorld(t)
	w.x.acks = append(w.x.acks,
		ack{corr: "r-10", kind: kindPrice, product: w.p1, version: 3, price: 200},
		ack{corr: "r-11", kind: kindRename, product: w.p2, version: 2, name: "b2"})
	if v := check(w.s, w.x); !v.clean() || v.noops != 2 {
		t.Fatalf("no-op commands: %+v %q", v, v.problems)
	}
	w.x.acks = append(w.x.acks, ack{corr: "r-12", kind: kindPrice, product: w.p1, version: 3, price: 300})
	if v := check(w.s, w.x); v.lostCommands != 1 {
		t.Fatalf("a price change that is no no-op and not stored: %+v", v)
	}
}

func TestParseFlags(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		ok      bool
		pgRests int
	}{
		{nil, true, 1},
		{[]string{"-postgres-url", "postgres://x@h/db"}, true, 0},
		{[]string{"-postgres-url", "postgres://x@h/db", "-pg-restart"}, true, 1},
		{[]string{"-postgres-url", "postgres://x@h/db", "-pg-restarts", "2"}, false, 0},
		{[]string{"-pg-restart"}, false, 0},
		{[]string{"-embedded"}, true, 0},
		{[]string{"-embedded", "-postgres-url", "postgres://x@h/db"}, false, 0},
		{[]string{"-duration", "1s"}, false, 0},
		{[]string{"-kills", "-1"}, false, 0},
		{[]string{"extra"}, false, 0},
	} {
		o, err := parseFlags(tt.args, testWriter{t})
		if (err == nil) != tt.ok || (tt.ok && o.pgRestarts != tt.pgRests) {
			t.Errorf("%q: %+v, %v", tt.args, o.pgRestarts, err)
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
