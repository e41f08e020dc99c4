// Package event defines the stored event envelope, the Store interface every
// event store implements, expected-version concurrency, and the Registry
// that maps stable event names to Go types.
//
// # Envelope
//
// An Event carries its ID (UUIDv7), stream, 1-based stream version, global
// position, stable type name and schema version, the encoded payload and
// Metadata (correlation and causation IDs, W3C trace context, user keys).
//
// # Guarantees
//
// A Store appends atomically and checks the expected version (Any, NoStream,
// StreamExists, Exactly(n)) under a lock; a mismatch returns a
// *ConcurrencyError that satisfies errors.Is(err, ErrConcurrencyConflict).
// Event IDs are unique across the store: repeating an append that is
// already stored is a no-op, and an ID stored anywhere else fails the
// append with ErrDuplicateEventID. ReadAll never skips an event, even when
// transactions commit out of position order.
//
// # Names
//
// A stream type becomes a broker topic and a stream ID a message key, so
// the store refuses at append what no broker would carry:
// ValidateStreamType and ValidateStreamID state the rules.
//
// # Schema evolution
//
// Payloads are stored under stable names with a schema version. When a
// payload type changes, register it with RegisterVersion and add an Upcaster
// for each old version; Decode upcasts on read, and stored data is never
// rewritten.
//
// Bad input (an empty stream ID, an event of another stream, nil data,
// Exactly(0)) is a *ValidationError naming the field; nothing is stored.
package event
