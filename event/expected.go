package event

import (
	"fmt"
	"strconv"
)

// ExpectedVersion is the optimistic-concurrency condition of an append.
// Use Any, NoStream, StreamExists or Exactly(n).
type ExpectedVersion struct {
	kind    expectKind
	version int64
}

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectStreamExists
	expectExactly
)

var (
	// Any appends whatever the stream's version, creating the stream if
	// needed.
	Any = ExpectedVersion{kind: expectAny}
	// NoStream appends only if the stream has no events yet.
	NoStream = ExpectedVersion{kind: expectNoStream}
	// StreamExists appends only if the stream has at least one event.
	StreamExists = ExpectedVersion{kind: expectStreamExists}
)

// Exactly appends only if the stream is at version n (n >= 1; use NoStream
// for an empty stream).
func Exactly(n int64) ExpectedVersion { return ExpectedVersion{kind: expectExactly, version: n} }

// Validate reports an invalid expected version, such as Exactly(0).
func (e ExpectedVersion) Validate() error {
	if e.kind == expectExactly && e.version < 1 {
		return &ValidationError{Field: "expected version", Value: strconv.FormatInt(e.version, 10),
			Reason: "Exactly(n) needs n >= 1; use NoStream for a stream without events"}
	}
	if e.kind > expectExactly {
		return &ValidationError{Field: "expected version", Value: e.String(), Reason: "unknown kind"}
	}
	return nil
}

// Check returns nil when a stream at version current (0: no events)
// satisfies e, and a *ConcurrencyError otherwise.
func (e ExpectedVersion) Check(stream string, current int64) error {
	ok := true
	switch e.kind {
	case expectNoStream:
		ok = current == 0
	case expectStreamExists:
		ok = current > 0
	case expectExactly:
		ok = current == e.version
	}
	if ok {
		return nil
	}
	return &ConcurrencyError{Stream: stream, Expected: e, Actual: current}
}

// IsAny, IsNoStream, IsStreamExists report the kind; Exact returns n and true
// for Exactly(n).
func (e ExpectedVersion) IsAny() bool          { return e.kind == expectAny }
func (e ExpectedVersion) IsNoStream() bool     { return e.kind == expectNoStream }
func (e ExpectedVersion) IsStreamExists() bool { return e.kind == expectStreamExists }
func (e ExpectedVersion) Exact() (int64, bool) { return e.version, e.kind == expectExactly }

func (e ExpectedVersion) String() string {
	switch e.kind {
	case expectAny:
		return "any"
	case expectNoStream:
		return "no stream"
	case expectStreamExists:
		return "stream exists"
	case expectExactly:
		return fmt.Sprintf("version %d", e.version)
	}
	return fmt.Sprintf("ExpectedVersion(%d)", e.kind)
}
