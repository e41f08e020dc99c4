// Package store holds what the SQL event stores, store/postgres and
// store/sqlite, offer operators beyond the core interfaces: Admin, the
// reads and schema tasks behind the cqrskit CLI, and the types they return.
// A tool written against Admin works on either database.
//
// Applications do not need this package: they use the core interfaces
// (event.Store, outbox.Store, handler.Store, ...) that the stores
// implement. It imports only the core, never a driver; the adapters import
// it.
package store
