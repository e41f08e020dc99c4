// Package memory is an in-process messagebus.Broker for unit tests and
// prototypes, with the semantics of the real brokers: messages are
// de-duplicated by ID within a window (as NATS JetStream's duplicate
// window), groups are durable for the broker's lifetime, a new group starts
// with the oldest message, failed messages are retried in place after the
// retry delay, and Attempt counts deliveries across restarts of a group's
// subscription.
//
// Each group consumes a topic in publish order through one subscription at
// a time; further subscriptions of the group wait as standbys and take
// over when it stops. Order therefore holds per key, across retries and
// across members.
//
// Messages live as long as the broker and are never trimmed; it is not a
// persistent or production broker.
package memory
