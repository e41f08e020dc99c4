package event_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cqrskit/cqrskit/event"
)

type created struct {
	Name string `json:"name"`
}

type moved struct{ To string }

// renamedV2 is v2 of "renamed": v1 stored {"title": ...}.
type renamedV2 struct {
	Name string `json:"name"`
}

func newRegistry(t *testing.T) *event.Registry {
	t.Helper()
	r := event.NewRegistry(nil)
	if err := event.Register[created](r, "thing.created"); err != nil {
		t.Fatal(err)
	}
	if err := event.RegisterVersion[renamedV2](r, "thing.renamed", 2); err != nil {
		t.Fatal(err)
	}
	if err := event.RegisterVersion[moved](r, "thing.moved", 2); err != nil {
		t.Fatal(err)
	}
	err := r.Upcast("thing.renamed", 1, func(data []byte) ([]byte, error) {
		var v1 struct {
			Title string `json:"title"`
		}
		if err := json.Unmarshal(data, &v1); err != nil {
			return nil, err
		}
		return json.Marshal(renamedV2{Name: v1.Title})
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegistryRoundTrip(t *testing.T) {
	r := newRegistry(t)
	e, err := r.NewEvent(created{Name: "a"}, event.Metadata{CorrelationID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Type != "thing.created" || e.SchemaVersion != 1 || e.ID.Version() != 7 || e.Metadata.CorrelationID != "c" {
		t.Errorf("NewEvent = %+v", e)
	}
	v, err := r.Decode(e)
	if err != nil {
		t.Fatal(err)
	}
	if v != (created{Name: "a"}) {
		t.Errorf("Decode = %#v", v)
	}
}

func TestRegistryUpcastsOldVersions(t *testing.T) {
	r := newRegistry(t)
	old := event.Event{ID: event.NewID(), Type: "thing.renamed", SchemaVersion: 1, Data: []byte(`{"title":"old"}`)}
	v, err := r.Decode(old)
	if err != nil {
		t.Fatal(err)
	}
	if v != (renamedV2{Name: "old"}) {
		t.Errorf("upcast = %#v, want renamedV2{old}", v)
	}
	cur, err := r.NewEvent(renamedV2{Name: "new"}, event.Metadata{})
	if err != nil || cur.SchemaVersion != 2 {
		t.Fatalf("NewEvent for v2 = %+v, %v", cur, err)
	}
}

func TestRegistryDecodeErrors(t *testing.T) {
	r := newRegistry(t)
	cases := []struct {
		name    string
		e       event.Event
		is      error
		message string
	}{
		{"unknown type", event.Event{Type: "thing.exploded", Data: []byte(`{}`)}, event.ErrUnknownEventType, `"thing.exploded" is not registered`},
		{"undecodable payload", event.Event{Type: "thing.created", SchemaVersion: 1, Data: []byte(`{"name":`)}, event.ErrDecode, "thing.created v1"},
		{"wrong JSON type", event.Event{Type: "thing.created", SchemaVersion: 1, Data: []byte(`{"name":7}`)}, event.ErrDecode, "cannot unmarshal number"},
		{"newer schema than code", event.Event{Type: "thing.created", SchemaVersion: 5, Data: []byte(`{}`)}, event.ErrDecode, "newer than the registered version 1"},
		{"missing upcaster", event.Event{Type: "thing.moved", SchemaVersion: 1, Data: []byte(`{}`)}, event.ErrDecode, "no upcaster from schema version 1 to 2"},
		{"upcaster fails", event.Event{Type: "thing.renamed", SchemaVersion: 1, Data: []byte(`[`)}, event.ErrDecode, "upcast from schema version 1"},
		{"nil payload", event.Event{Type: "thing.created", SchemaVersion: 1}, event.ErrDecode, "payload is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Decode(tc.e)
			if !errors.Is(err, tc.is) {
				t.Fatalf("got %v, want errors.Is %v", err, tc.is)
			}
			var de *event.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("got %T, want *event.DecodeError", err)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("message %q lacks %q", err, tc.message)
			}
		})
	}
}

func TestRegistryRegisterErrors(t *testing.T) {
	r := event.NewRegistry(nil)
	if err := event.Register[created](r, ""); !errors.Is(err, event.ErrInvalidEvent) {
		t.Errorf("empty name: %v", err)
	}
	if err := event.Register[*created](r, "p"); !errors.Is(err, event.ErrInvalidEvent) {
		t.Errorf("pointer type: %v", err)
	}
	if err := event.RegisterVersion[created](r, "v", 0); !errors.Is(err, event.ErrInvalidEvent) {
		t.Errorf("version 0: %v", err)
	}
	if err := event.Register[created](r, "a"); err != nil {
		t.Fatal(err)
	}
	if err := event.Register[created](r, "a"); err != nil {
		t.Errorf("registering the same pair twice: %v, want nil", err)
	}
	if err := event.Register[created](r, "b"); err == nil {
		t.Error("one type under two names: want an error")
	}
	if err := event.Register[renamedV2](r, "a"); err == nil {
		t.Error("one name for two types: want an error")
	}
	if _, _, err := r.Name(renamedV2{}); !errors.Is(err, event.ErrUnknownEventType) {
		t.Errorf("Name of unregistered type: %v", err)
	}
	if _, err := r.NewEvent(nil, event.Metadata{}); !errors.Is(err, event.ErrInvalidEvent) {
		t.Errorf("NewEvent(nil): %v", err)
	}
	if err := r.Upcast("a", 1, nil); !errors.Is(err, event.ErrInvalidEvent) {
		t.Errorf("nil upcaster: %v", err)
	}
}

func FuzzRegistryDecode(f *testing.F) {
	f.Add("thing.created", 1, []byte(`{"name":"x"}`))
	f.Add("thing.renamed", 1, []byte(`{"title":"y"}`))
	f.Add("thing.renamed", 2, []byte(`{"name":"z"}`))
	f.Add("thing.unknown", 3, []byte(`null`))
	f.Add("thing.created", -1, []byte(`{`))
	f.Fuzz(func(t *testing.T, typ string, version int, data []byte) {
		r := newRegistry(t)
		v, err := r.Decode(event.Event{Type: typ, SchemaVersion: version, Data: data})
		if err != nil {
			if !errors.Is(err, event.ErrDecode) {
				t.Fatalf("decode error %v is not ErrDecode", err)
			}
			return
		}
		switch v.(type) {
		case created, renamedV2, moved:
		default:
			t.Fatalf("decoded to unexpected %T", v)
		}
	})
}
