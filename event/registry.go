package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
)

// Codec encodes and decodes payloads. JSON is the default.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSON is the default Codec, encoding/json.
type JSON struct{}

func (JSON) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (JSON) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// Upcaster turns a payload stored under one schema version into the payload
// of the next version. It receives and returns encoded data.
type Upcaster func(data []byte) ([]byte, error)

// Registry maps stable event names to Go types and back, encodes payloads
// with its Codec and upcasts old schema versions on decode. It is safe for
// concurrent use; register everything before use.
type Registry struct {
	codec Codec

	mu        sync.RWMutex
	byName    map[string]registered
	byType    map[reflect.Type]string
	upcasters map[upcastKey]Upcaster
}

type registered struct {
	typ     reflect.Type
	version int
}

type upcastKey struct {
	name    string
	version int
}

// NewRegistry returns an empty registry using codec; nil means JSON.
func NewRegistry(codec Codec) *Registry {
	if codec == nil {
		codec = JSON{}
	}
	return &Registry{
		codec:     codec,
		byName:    map[string]registered{},
		byType:    map[reflect.Type]string{},
		upcasters: map[upcastKey]Upcaster{},
	}
}

// Register registers T under name at schema version 1. See RegisterVersion.
func Register[T any](r *Registry, name string) error {
	return RegisterVersion[T](r, name, 1)
}

// RegisterVersion registers T as the current schema version of event name.
// Payloads are values of T (not pointers). Stored events of older versions
// need an upcaster for each step (see Registry.Upcast).
func RegisterVersion[T any](r *Registry, name string, version int) error {
	t := reflect.TypeFor[T]()
	if name == "" {
		return &ValidationError{Field: "event name", Value: "", Reason: "name must not be empty"}
	}
	if version < 1 {
		return &ValidationError{Field: "schema version of " + name, Value: fmt.Sprint(version), Reason: "must be >= 1"}
	}
	if t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface {
		return &ValidationError{Field: "type of " + name, Value: t.String(), Reason: "register the value type, not a pointer or interface"}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.byName[name]; ok && prev.typ != t {
		return fmt.Errorf("register %s as %s: name already registered to %s", name, t, prev.typ)
	}
	if prev, ok := r.byType[t]; ok && prev != name {
		return fmt.Errorf("register %s as %s: type already registered as %s", t, name, prev)
	}
	r.byName[name] = registered{typ: t, version: version}
	r.byType[t] = name
	return nil
}

// MustRegister is Register for package initialisation; it panics on a
// programming error such as a name registered twice.
func MustRegister[T any](r *Registry, name string) {
	if err := Register[T](r, name); err != nil {
		panic(err)
	}
}

// Upcast registers fn to turn payloads of event name at schema version from
// into version from+1.
func (r *Registry) Upcast(name string, from int, fn Upcaster) error {
	if fn == nil {
		return &ValidationError{Field: "upcaster", Value: "nil", Reason: "function must not be nil"}
	}
	if from < 1 {
		return &ValidationError{Field: "upcaster from-version of " + name, Value: fmt.Sprint(from), Reason: "must be >= 1"}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.upcasters[upcastKey{name, from}] = fn
	return nil
}

// Name returns the registered name and current schema version of data's type.
func (r *Registry) Name(data any) (string, int, error) {
	if data == nil {
		return "", 0, &ValidationError{Field: "event data", Value: "nil", Reason: "payload must not be nil"}
	}
	t := reflect.TypeOf(data)
	r.mu.RLock()
	defer r.mu.RUnlock()
	name, ok := r.byType[t]
	if !ok {
		return "", 0, fmt.Errorf("%w: Go type %s is not registered", ErrUnknownEventType, t)
	}
	return name, r.byName[name].version, nil
}

// NewEvent encodes data into an Event with a new ID, its registered type
// name and schema version, and md.
func (r *Registry) NewEvent(data any, md Metadata) (Event, error) {
	name, version, err := r.Name(data)
	if err != nil {
		return Event{}, err
	}
	raw, err := r.codec.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s: %w", name, err)
	}
	return Event{ID: NewID(), Type: name, SchemaVersion: version, Data: raw, Metadata: md}, nil
}

// Decode returns e's payload as a value of its registered type, upcasting
// older schema versions first. Errors are *DecodeError.
func (r *Registry) Decode(e Event) (any, error) {
	derr := func(err error) error {
		return &DecodeError{EventID: e.ID.String(), Stream: e.StreamID, Version: e.Version,
			Type: e.Type, SchemaVersion: e.SchemaVersion, Err: err}
	}
	r.mu.RLock()
	reg, ok := r.byName[e.Type]
	r.mu.RUnlock()
	if !ok {
		return nil, derr(fmt.Errorf("%w: %q is not registered", ErrUnknownEventType, e.Type))
	}
	data, err := r.upcast(e.Type, max(e.SchemaVersion, 1), reg.version, e.Data)
	if err != nil {
		return nil, derr(err)
	}
	if data == nil {
		return nil, derr(errors.New("payload is empty"))
	}
	v := reflect.New(reg.typ)
	if err := r.codec.Unmarshal(data, v.Interface()); err != nil {
		return nil, derr(err)
	}
	return v.Elem().Interface(), nil
}

func (r *Registry) upcast(name string, from, to int, data []byte) ([]byte, error) {
	if from > to {
		return nil, fmt.Errorf("stored schema version %d is newer than the registered version %d; deploy the newer code", from, to)
	}
	for v := from; v < to; v++ {
		r.mu.RLock()
		fn, ok := r.upcasters[upcastKey{name, v}]
		r.mu.RUnlock()
		if !ok {
			return nil, fmt.Errorf("no upcaster from schema version %d to %d", v, v+1)
		}
		var err error
		if data, err = fn(data); err != nil {
			return nil, fmt.Errorf("upcast from schema version %d: %w", v, err)
		}
	}
	return data, nil
}
