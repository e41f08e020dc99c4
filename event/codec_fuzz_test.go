package event_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/cqrskit/cqrskit/event"
)

// order is a payload using most JSON kinds.
type order struct {
	Customer string            `json:"customer"`
	Cents    int64             `json:"cents"`
	Express  bool              `json:"express"`
	Weight   float64           `json:"weight"`
	Lines    []string          `json:"lines"`
	Tags     map[string]string `json:"tags,omitempty"`
}

// FuzzCodecRoundTrip: a payload encoded by NewEvent decodes to an equal
// value, with its metadata intact. The JSON codec replaces invalid UTF-8
// with U+FFFD, so equality is asked of valid strings only; of every value,
// that one trip makes it a fixed point.
func FuzzCodecRoundTrip(f *testing.F) {
	f.Add("Ada", int64(4200), true, 1.5, "espresso cup", "corr-1")
	f.Add("", int64(0), false, 0.0, "", "")
	f.Add("Zoë \u2603 \"quoted\" \\ </script>", int64(math.MinInt64), true, math.Copysign(0, -1), "\x00\n\t", "c")
	f.Add("\xff\xfe", int64(math.MaxInt64), false, math.SmallestNonzeroFloat64, "\xed\xa0\x80", "\xff")
	f.Add("x", int64(-1), true, 1e308, "line", "trace")
	f.Fuzz(func(t *testing.T, customer string, cents int64, express bool, weight float64, line, corr string) {
		r := event.NewRegistry(nil)
		if err := event.Register[order](r, "shop.order_placed"); err != nil {
			t.Fatal(err)
		}
		in := order{Customer: customer, Cents: cents, Express: express, Weight: weight,
			Lines: []string{line, customer}, Tags: map[string]string{line: corr}}
		md := event.Metadata{CorrelationID: corr, Extra: map[string]string{"k": line}}
		e, err := r.NewEvent(in, md)
		if err != nil {
			if math.IsNaN(weight) || math.IsInf(weight, 0) {
				return // JSON has no NaN or infinity
			}
			t.Fatalf("NewEvent(%+v): %v", in, err)
		}
		if e.Type != "shop.order_placed" || e.SchemaVersion != 1 || !reflect.DeepEqual(e.Metadata, md) {
			t.Fatalf("NewEvent: type %q, schema %d, metadata %+v", e.Type, e.SchemaVersion, e.Metadata)
		}
		v, err := r.Decode(e)
		if err != nil {
			t.Fatalf("Decode of %q: %v", e.Data, err)
		}
		out, ok := v.(order)
		if !ok {
			t.Fatalf("decoded %T, want order", v)
		}
		if utf8.ValidString(customer) && utf8.ValidString(line) && utf8.ValidString(corr) && !reflect.DeepEqual(out, in) {
			t.Fatalf("round trip: %+v, want %+v", out, in)
		}
		// One trip makes any payload a fixed point.
		again, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		e.Data = again
		if v, err := r.Decode(e); err != nil || !reflect.DeepEqual(v, out) {
			t.Fatalf("decoded, re-encoded and decoded again: %+v, %v; want %+v", v, err, out)
		}
	})
}

// The current version of "shop.item_listed" is 3. v1 stored
// {"title", "cents"}; v2 {"name", "price": {"cents"}}; v3 adds a currency.
type itemV3 struct {
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Currency   string `json:"currency"`
}

type itemV2 struct {
	Name  string `json:"name"`
	Price struct {
		Cents int64 `json:"cents"`
	} `json:"price"`
}

func itemRegistry(t testing.TB) *event.Registry {
	t.Helper()
	r := event.NewRegistry(nil)
	if err := event.RegisterVersion[itemV3](r, "shop.item_listed", 3); err != nil {
		t.Fatal(err)
	}
	up1 := func(data []byte) ([]byte, error) {
		var v1 struct {
			Title string `json:"title"`
			Cents int64  `json:"cents"`
		}
		if err := json.Unmarshal(data, &v1); err != nil {
			return nil, err
		}
		var v2 itemV2
		v2.Name, v2.Price.Cents = v1.Title, v1.Cents
		return json.Marshal(v2)
	}
	up2 := func(data []byte) ([]byte, error) {
		var v2 itemV2
		if err := json.Unmarshal(data, &v2); err != nil {
			return nil, err
		}
		if v2.Price.Cents < 0 {
			return nil, fmt.Errorf("negative price %d", v2.Price.Cents)
		}
		return json.Marshal(itemV3{Name: v2.Name, PriceCents: v2.Price.Cents, Currency: "EUR"})
	}
	if err := r.Upcast("shop.item_listed", 1, up1); err != nil {
		t.Fatal(err)
	}
	if err := r.Upcast("shop.item_listed", 2, up2); err != nil {
		t.Fatal(err)
	}
	return r
}

// FuzzUpcasterChain: any stored payload at any schema version decodes to
// the current type or fails with a *DecodeError (never a panic, never
// another type); and a v1 or v2 payload goes through the whole chain to the
// v3 value it stands for, while a v3 payload is not upcast at all.
func FuzzUpcasterChain(f *testing.F) {
	f.Add(1, []byte(`{"title":"lamp","cents":1200}`), "lamp", int64(1200))
	f.Add(2, []byte(`{"name":"lamp","price":{"cents":1200}}`), "lamp", int64(1200))
	f.Add(3, []byte(`{"name":"lamp","price_cents":1200,"currency":"USD"}`), "", int64(0))
	f.Add(0, []byte(`{"title":"zero means 1"}`), "Zoë", int64(-5))
	f.Add(4, []byte(`{}`), "newer", int64(1))
	f.Add(-3, []byte(`null`), "", int64(math.MaxInt64))
	f.Add(2, []byte(`{"price":{"cents":-1}}`), "x", int64(math.MinInt64))
	f.Add(1, []byte(`[`), "\xff", int64(7))
	f.Fuzz(func(t *testing.T, version int, data []byte, title string, cents int64) {
		r := itemRegistry(t)
		decode := func(version int, data []byte) (itemV3, error) {
			v, err := r.Decode(event.Event{ID: event.NewID(), Type: "shop.item_listed", SchemaVersion: version, Data: data})
			if err != nil {
				var de *event.DecodeError
				if !errors.Is(err, event.ErrDecode) || !errors.As(err, &de) {
					t.Fatalf("version %d %q: error %v (%T) is no *DecodeError", version, data, err, err)
				}
				return itemV3{}, err
			}
			item, ok := v.(itemV3)
			if !ok {
				t.Fatalf("version %d %q: decoded %T, want itemV3", version, data, v)
			}
			return item, nil
		}

		// Anything stored.
		if _, err := decode(version, data); err == nil && version > 3 {
			t.Fatalf("version %d is newer than the code, yet %q decoded", version, data)
		}

		// The chain.
		if !utf8.ValidString(title) {
			return // JSON would replace the invalid bytes
		}
		want := itemV3{Name: title, PriceCents: cents, Currency: "EUR"}
		v1, _ := json.Marshal(map[string]any{"title": title, "cents": cents})
		var v2 itemV2
		v2.Name, v2.Price.Cents = title, cents
		v2data, _ := json.Marshal(v2)
		for _, c := range []struct {
			version int
			data    []byte
		}{{0, v1}, {1, v1}, {2, v2data}} {
			got, err := decode(c.version, c.data)
			switch {
			case cents < 0 && err == nil:
				t.Fatalf("v%d %s: a negative price passed the v2->v3 upcaster: %+v", c.version, c.data, got)
			case cents < 0:
			case err != nil || got != want:
				t.Fatalf("v%d %s: %+v, %v; want %+v", c.version, c.data, got, err, want)
			}
		}
		v3 := itemV3{Name: title, PriceCents: cents, Currency: "CHF"}
		v3data, _ := json.Marshal(v3)
		if got, err := decode(3, v3data); err != nil || got != v3 {
			t.Fatalf("v3 %s: %+v, %v; want it as stored", v3data, got, err)
		}
	})
}

// FuzzMetadataHeaders: metadata survives the trip through message headers
// (outbox, broker) and back. User keys must not be empty: an empty key
// maps to the bare prefix header, which is not read back.
func FuzzMetadataHeaders(f *testing.F) {
	f.Add("corr", "cause", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "k=v", "tenant", "acme")
	f.Add("", "", "", "", "", "")
	f.Add("Cqrs-X-", "\n", "\x00", "traceparent", "Correlation-Id", "\xff")
	f.Fuzz(func(t *testing.T, corr, cause, traceParent, traceState, key, value string) {
		m := event.Metadata{CorrelationID: corr, CausationID: cause, TraceParent: traceParent, TraceState: traceState}
		if key != "" {
			m.Extra = map[string]string{key: value}
		}
		got := event.MetadataFromHeaders(m.Headers())
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("headers %q: got %+v, want %+v", m.Headers(), got, m)
		}
	})
}
