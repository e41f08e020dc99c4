// Package app is the sample's application layer: the commands that change
// products (the command handlers) and the read models that answer queries
// (the event handlers). It speaks database/sql and the framework's core
// packages only; which database and broker it runs on, and the HTTP API in
// front of it (infra/httpapi), are the infra package's business. Copy
// domain and app into a service of your own and write its infra.
//
// # Write side
//
// Service runs the commands through es.Repository[*domain.Product] with
// snapshots every SnapshotEvery events. Create reserves the product's SKU
// in the sku_index table in the same transaction as the append (SaveTx),
// so the SKU is unique across products, regardless of case, with no window
// in between: of two
// concurrent creates with one SKU, one commits and the other gets a
// *SKUTakenError with nothing stored. Execute runs the other commands:
// unconditionally, retrying concurrency conflicts with jittered backoff, or
// conditionally on a version (If-Match), failing with a
// *PreconditionError when the product is elsewhere.
//
// # Read side
//
// Three read models live in the same database:
//
//   - Products (table products): fed from the broker by an idempotent
//     handler, so its writes commit with the handler's processed mark.
//     Each row carries the product's version; readers can wait for a
//     version (WaitFor) to read their own writes. Events that arrive out
//     of order are not waited for: Apply fills the gap from the event
//     store.
//   - Alerts (table stock_alerts): the second consumer of the broker,
//     raising a low-stock alert when an adjustment takes the stock below
//     the threshold, keyed by event ID.
//   - Stats (table stats_products): built by a projection that reads the
//     event store itself, so it can be rebuilt from scratch at any time.
//
// Migrate creates these tables with goose; the SQL is the same on SQLite
// and PostgreSQL.
//
// # What it does not guarantee
//
// GET /products/{id} without min_version reads the read model, which
// trails the store by the relay and the consumer: a client that needs its
// own write passes the version the command returned. A SKU stays reserved
// after its product is discontinued.
package app
