//go:build unix

package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/sample/domain"
)

// expect is what the checks compare the snapshot with: what the clients
// were told, and what the suite injected.
type expect struct {
	acks       []ack
	ambiguous  map[string]kind // correlation ID -> command with no answer
	corrPrefix string          // every client command's correlation ID starts so
	poison     string          // the poison product's name
	threshold  int64
}

// verdict is the outcome of the checks.
type verdict struct {
	lostCommands int                  // acknowledged, not stored as acknowledged
	lostEvents   map[uuid.UUID]string // stored, without their full effect: why
	dup          int
	violations   int      // other failed checks
	problems     []string // one line each

	events, products, alerts, poison int
	noops                            int // acknowledged commands that changed nothing
	ambiguousStored, ambiguousNot    int
	brokerMsgs, brokerRepublished    int
}

func (v *verdict) lost() int { return v.lostCommands + len(v.lostEvents) }

func (v *verdict) clean() bool { return v.lost() == 0 && v.dup == 0 && v.violations == 0 }

// product is a product's state replayed from the store.
type product struct {
	name, sku    string
	price, stock int64
	discontinued bool
	version      int64
	events       []event.Event
	poison       bool
	// names and prices after each version, for no-op commands.
	names  []string
	prices []int64
}

// check compares a snapshot with the expectations.
func check(s *snapshot, x expect) *verdict {
	v := &verdict{lostEvents: map[uuid.UUID]string{}}
	problem := func(format string, args ...any) { v.problems = append(v.problems, fmt.Sprintf(format, args...)) }
	violation := func(format string, args ...any) {
		v.violations++
		problem(format, args...)
	}
	lose := func(id uuid.UUID, why string) {
		if _, ok := v.lostEvents[id]; !ok {
			v.lostEvents[id] = why
		}
	}
	reg := domain.NewRegistry()

	// Replay the store: each stream gap-free and in version order in the
	// global log, each stock adjustment and price change continuing the
	// one before.
	products := map[string]*product{}
	byID := map[uuid.UUID]event.Event{}
	byCorr := map[string][]event.Event{}
	decoded := map[uuid.UUID]any{}
	poison := map[uuid.UUID]bool{}
	for _, e := range s.events {
		if _, dup := byID[e.ID]; dup {
			v.dup++
			problem("event %s appears twice in the global log", e.ID)
			continue
		}
		byID[e.ID] = e
		id, ok := strings.CutPrefix(e.StreamID, domain.StreamType+"-")
		if !ok {
			violation("event %s is in stream %q, not a product's", e.ID, e.StreamID)
			continue
		}
		p := products[id]
		if p == nil {
			p = &product{}
			products[id] = p
		}
		if e.Version != p.version+1 {
			violation("product %s: version %d follows version %d in the global log", id, e.Version, p.version)
		}
		p.version = e.Version
		p.events = append(p.events, e)
		corr := e.Metadata.CorrelationID
		byCorr[corr] = append(byCorr[corr], e)
		if !strings.HasPrefix(corr, x.corrPrefix) {
			violation("event %s (%s) carries correlation ID %q, which no client sent", e.ID, e.Type, corr)
		}
		data, err := reg.Decode(e)
		if err != nil {
			violation("event %s does not decode: %v", e.ID, err)
			continue
		}
		decoded[e.ID] = data
		switch d := data.(type) {
		case domain.Created:
			if e.Version != 1 {
				violation("product %s: created at version %d", id, e.Version)
			}
			p.name, p.sku, p.price, p.stock = d.Name, d.SKU, d.PriceCents, d.Stock
			if d.Name == x.poison {
				p.poison, poison[e.ID] = true, true
			}
		case domain.Renamed:
			p.name = d.Name
		case domain.PriceChanged:
			if d.Previous != p.price {
				violation("product %s version %d: price changed from %d, but it was %d", id, e.Version, d.Previous, p.price)
			}
			p.price = d.PriceCents
		case domain.StockAdjusted:
			if d.Stock != p.stock+d.Delta {
				violation("product %s version %d: stock %d after %+d, but it was %d", id, e.Version, d.Stock, d.Delta, p.stock)
			}
			p.stock = d.Stock
		case domain.Discontinued:
			p.discontinued = true
		}
		p.names, p.prices = append(p.names, p.name), append(p.prices, p.price)
	}
	v.events, v.products, v.poison = len(s.events), len(products), len(poison)

	// Every acknowledged command is stored, once, as acknowledged.
	for _, a := range x.acks {
		var found *event.Event
		for i, e := range byCorr[a.corr] {
			if e.StreamID == domain.StreamType+"-"+a.product && e.Version == a.version {
				found = &byCorr[a.corr][i]
			}
		}
		if found == nil && noop(a, products[a.product]) {
			v.noops++
			continue
		}
		if found == nil {
			v.lostCommands++
			where := "not in the store"
			if evs := byCorr[a.corr]; len(evs) > 0 {
				where = fmt.Sprintf("stored as %s version %d", evs[0].StreamID, evs[0].Version)
			}
			problem("lost: %s of product %s acknowledged at version %d (X-Correlation-Id %s): %s", a.kind, a.product, a.version, a.corr, where)
			continue
		}
		if why := matches(a, found.Type, decoded[found.ID]); why != "" {
			v.lostCommands++
			problem("lost: %s of product %s acknowledged at version %d is stored as %s: %s", a.kind, a.product, a.version, found.Type, why)
		}
	}
	for _, corr := range slices.Sorted(maps.Keys(byCorr)) {
		if evs := byCorr[corr]; len(evs) > 1 && corr != "" {
			v.dup += len(evs) - 1
			problem("duplicated: one command (X-Correlation-Id %s) is stored %d times: %s version %d and %s version %d",
				corr, len(evs), evs[0].StreamID, evs[0].Version, evs[1].StreamID, evs[1].Version)
		}
	}
	for corr := range x.ambiguous {
		if len(byCorr[corr]) > 0 {
			v.ambiguousStored++
		} else {
			v.ambiguousNot++
		}
	}

	// The broker got each product's events in version order.
	if b := s.broker; b != nil {
		seen := map[uuid.UUID]bool{}
		last := map[string]int64{}
		for _, m := range b.msgs {
			v.brokerMsgs++
			if seen[m.id] {
				v.brokerRepublished++
				continue
			}
			seen[m.id] = true
			if _, ok := byID[m.id]; !ok {
				violation("broker message %s (%s version %d) is not in the store", m.id, m.stream, m.version)
			}
			if m.version <= last[m.stream] {
				violation("order: %s version %d reached the broker after version %d (stream sequence %d)", m.stream, m.version, last[m.stream], m.seq)
			}
			last[m.stream] = max(last[m.stream], m.version)
		}
		for _, e := range s.events {
			if !seen[e.ID] {
				lose(e.ID, "never published to the broker")
			}
		}
	}

	// The products read model equals the replay; the poison product is not
	// in it.
	ids := slices.Sorted(maps.Keys(products))
	for _, id := range ids {
		p := products[id]
		row, ok := s.products[id]
		switch {
		case p.poison && ok:
			v.dup++
			problem("duplicated: the poison product %s is in the products read model", id)
		case p.poison:
		case !ok:
			for _, e := range p.events {
				lose(e.ID, "missing from the products read model")
			}
		case row.version < p.version:
			for _, e := range p.events[row.version:] {
				lose(e.ID, "missing from the products read model")
			}
		case row.version > p.version:
			v.dup += int(row.version - p.version)
			problem("duplicated: product %s is at version %d in the read model, %d in the store", id, row.version, p.version)
		case row != productRow{p.name, p.sku, p.price, p.stock, p.discontinued, p.version}:
			lose(p.events[len(p.events)-1].ID, "the products read model differs from the replay")
			problem("product %s: read model %+v, replay %+v", id, row, productRow{p.name, p.sku, p.price, p.stock, p.discontinued, p.version})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(s.products)) {
		if products[id] == nil {
			v.dup++
			problem("duplicated: product %s is in the read model but not in the store", id)
		}
	}

	// Both consumers handled every event exactly once (one processed mark
	// each), except the poison event in the products consumer.
	for _, e := range s.events {
		if poison[e.ID] {
			if s.marks[productsHandler][e.ID] {
				v.dup++
				problem("duplicated: the poison event %s is marked handled by %s", e.ID, productsHandler)
			}
		} else if !s.marks[productsHandler][e.ID] {
			lose(e.ID, "never handled by the products consumer")
		}
		if !s.marks[alertsHandler][e.ID] {
			lose(e.ID, "never handled by the low-stock consumer")
		}
	}
	for _, h := range slices.Sorted(maps.Keys(s.marks)) {
		if h != productsHandler && h != alertsHandler {
			violation("processed marks of an unknown handler %q", h)
		}
		for id := range s.marks[h] {
			if _, ok := byID[id]; !ok {
				v.dup++
				problem("duplicated: %s marked event %s handled, which is not in the store", h, id)
			}
		}
	}

	// Exactly the alerts the stock adjustments call for.
	want := map[uuid.UUID]alertRow{}
	for _, e := range s.events {
		if d, ok := decoded[e.ID].(domain.StockAdjusted); ok && d.Stock < x.threshold && d.Stock-d.Delta >= x.threshold {
			want[e.ID] = alertRow{product: strings.TrimPrefix(e.StreamID, domain.StreamType+"-"), stock: d.Stock, version: e.Version}
		}
	}
	v.alerts = len(want)
	for _, id := range slices.SortedFunc(maps.Keys(want), uuidCmp) {
		got, ok := s.alerts[id]
		switch {
		case !ok:
			lose(id, "its low-stock alert is missing")
		case got != want[id]:
			lose(id, "its low-stock alert differs")
			problem("alert of event %s: %+v, want %+v", id, got, want[id])
		}
	}
	for _, id := range slices.SortedFunc(maps.Keys(s.alerts), uuidCmp) {
		if _, ok := want[id]; !ok {
			v.dup++
			problem("duplicated: alert for event %s, which calls for none", id)
		}
	}

	// The stats projection equals the replay, the poison product included.
	for _, id := range ids {
		p := products[id]
		if row, ok := s.stats[id]; !ok || row != (statsRow{p.price, p.stock, p.discontinued}) {
			lose(p.events[len(p.events)-1].ID, "the stats projection differs from the replay")
		}
	}
	for id := range s.stats {
		if products[id] == nil {
			v.dup++
			problem("duplicated: product %s is in the stats but not in the store", id)
		}
	}

	// The poison event, and nothing else, is in the dead letters.
	dead := map[uuid.UUID]bool{}
	for _, dl := range s.dead {
		switch _, stored := byID[dl.event]; {
		case dl.handler == productsHandler && poison[dl.event]:
			dead[dl.event] = true
		case stored:
			lose(dl.event, "dead-lettered by "+dl.handler+": "+dl.err)
		default:
			violation("dead letter of %s for event %s, which is not in the store: %s", dl.handler, dl.event, dl.err)
		}
	}
	for _, id := range slices.SortedFunc(maps.Keys(poison), uuidCmp) {
		if !dead[id] {
			lose(id, "the poison event is not in the dead letters")
		}
	}
	if s.outbox > 0 {
		violation("%d events still in the outbox", s.outbox)
	}

	// One line per reason for the lost events, with examples.
	reasons := map[string][]uuid.UUID{}
	for id, why := range v.lostEvents {
		reasons[why] = append(reasons[why], id)
	}
	for _, why := range slices.Sorted(maps.Keys(reasons)) {
		evs := reasons[why]
		slices.SortFunc(evs, uuidCmp)
		var ex []string
		for _, id := range evs[:min(3, len(evs))] {
			e := byID[id]
			ex = append(ex, fmt.Sprintf("%s v%d (%s)", e.StreamID, e.Version, e.Type))
		}
		problem("lost: %d events %s, e.g. %s", len(evs), why, strings.Join(ex, ", "))
	}
	return v
}

// noop reports whether a is a command that changed nothing, as renaming to
// the current name and setting the current price do: the product had
// that name or price at the version acknowledged.
func noop(a ack, p *product) bool {
	if p == nil || a.version < 1 || a.version > int64(len(p.names)) {
		return false
	}
	switch a.kind {
	case kindRename:
		return p.names[a.version-1] == a.name
	case kindPrice:
		return p.prices[a.version-1] == a.price
	}
	return false
}

func uuidCmp(a, b uuid.UUID) int { return cmp.Compare(a.String(), b.String()) }

// matches says how a stored event differs from the acknowledged command,
// or "" when it is the command's event.
func matches(a ack, typ string, data any) string {
	switch d := data.(type) {
	case domain.Created:
		if a.kind == kindCreate && d.Name == a.name && d.SKU == a.sku && d.PriceCents == a.price && d.Stock == a.stock {
			return ""
		}
	case domain.StockAdjusted:
		if a.kind == kindStock && d.Delta == a.delta {
			return ""
		}
	case domain.PriceChanged:
		if a.kind == kindPrice && d.PriceCents == a.price {
			return ""
		}
	case domain.Renamed:
		if a.kind == kindRename && d.Name == a.name {
			return ""
		}
	case domain.Discontinued:
		if a.kind == kindDiscontinue {
			return ""
		}
	}
	return fmt.Sprintf("%s %+v, want the %s command's event", typ, data, a.kind)
}
