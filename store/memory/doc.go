// Package memory is an in-memory event store for unit tests and prototypes.
//
// A Store implements event.Store, es.SnapshotStore and outbox.Store, so an
// application can run end to end (repository, snapshots, outbox relay)
// without a database:
//
//	store := memory.New()
//	repo, err := es.NewRepository(store, registry, es.RepositoryConfig[*Account]{
//		New:        func() *Account { return &Account{} },
//		StreamType: "account",
//		Snapshots:  store,
//	})
//
// # Guarantees
//
// The Store follows the event.Store contract: appends are atomic and check
// the expected version under one lock; an event whose ID is already stored
// is skipped; ReadAll returns events in position order, and since appends
// are serialized no event ever commits behind a later one (TxID is always
// 0). Every append writes one outbox record per stored event, in position
// order. Every value handed in or out is copied, so callers cannot change
// stored data.
//
// Load streams: it holds no lock while the caller handles an event, so the
// caller may append to the store from inside the loop. It sees the stream as
// it was when Load started.
//
// # Limits
//
// Nothing survives the process, and nothing is ever freed except published
// outbox records and replaced snapshots. There is no transaction support
// (event.TxStore): Repository.SaveTx needs an SQL store.
package memory
