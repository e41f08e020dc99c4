// Package httpapi is the sample's HTTP API over the application layer
// (package app): NewHandler serves the routes documented on it, turning
// requests into app.Service commands and read-model queries.
//
// Errors are always {"error": "...", "field": "..."}: 400 for a request
// that is wrong in itself (bad JSON, an unknown or ill-typed field, an
// invalid value), 404 for an unknown product or version, 409 when the
// product's state refuses the command (a taken SKU, stock below zero, a
// discontinued product, too many concurrent writers), 412 for a failed
// If-Match, 413 for a body over the limit, 415 for a body that is not
// JSON, and 503 with Retry-After when a read-your-writes wait times out.
//
// GET /products/{id} without min_version reads the read model, which
// trails the store by the relay and the consumer: a client that needs its
// own write passes the version the command returned.
package httpapi
