// Package driver is for implementers of event stores and brokers;
// applications do not need it.
//
// An application uses the interfaces in event (Store, TxStore) and
// messagebus (Publisher, Subscriber, Broker) and the adapters that implement
// them (store/postgres, store/sqlite, store/memory, messagebus/natsjs,
// messagebus/kafka, messagebus/memory). This package holds the helpers those
// adapters share, so every implementation validates its input, fills
// defaults and reports errors the same way, and the user-facing packages
// show only what an application calls. It plays the part River's
// riverdriver plays for River's database drivers.
//
// # Event stores
//
// An event.Store implementation calls PrepareAppend before it touches
// storage: it validates the append (stream ID, expected version, each
// event's names, payload and metadata keys) and returns a copy of the events
// with defaults filled (a new UUIDv7 ID, the stream ID, schema version 1).
// Under the append's lock it looks up which of the events' IDs it already
// stores and passes them to SkipStored, which applies the store's
// duplicate-ID rule: an idempotent retry is skipped, any other stored ID is
// an *event.DuplicateEventIDError. ValidateLoad and ValidateReadAll check the
// arguments of Load and ReadAll; ErrorSeq returns the iterator Load returns
// on failure, and StreamNotFoundError the error for a stream without events.
//
// # Brokers
//
// A messagebus.Subscriber implementation calls ValidateSubscribe with
// Subscribe's arguments and NewSubscribeConfig to apply the caller's
// messagebus.SubscribeOption values to its own defaults.
//
// # Guarantees
//
// Every error from a validating helper is the user-facing package's typed
// error (*event.ValidationError, *messagebus.ValidationError), so callers of
// a store or broker branch on the same sentinels whichever implementation
// they run. The contract suites (event/eventtest, messagebus/bustest) check
// an implementation's behaviour; this package does not.
package driver
