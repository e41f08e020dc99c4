// Package kafka is the messagebus.Broker on Kafka, with franz-go.
//
// # Topics
//
// A topic is created on its first Publish or Subscribe (Partitions, 3 by
// default; ReplicationFactor, the cluster's default) unless
// DisableTopicCreation is set. Choose the partition count once: adding
// partitions moves keys between partitions, and their order is lost
// across the move.
//
// # Publishing
//
// Publish produces the messages and waits for their acks (PublishTimeout,
// ctx). The record key is Message.Key, so a key stays on one partition in
// publish order. Keys are pipelined, but a key has at most one record in
// flight and none after a failure: franz-go fails the records buffered
// behind a failed batch, not ones produced after it, so producing a key's
// records all at once could store 1 and 3 of a key whose 2 failed; Message.ID travels in the Cqrs-Msg-Id header and headers
// as record headers. The producer is idempotent (franz-go's default): its
// own retries never duplicate or reorder a record. Kafka has no
// de-duplication by message ID, though: a message the caller publishes
// twice is stored twice and consumers get it twice, with the same ID. The
// handler (handler.Idempotent) drops the second. Sizes are checked
// against MaxMessageBytes before producing.
//
// # Consuming
//
// A subscription is a consumer group named "<group>.<topic>" that starts a
// new group at the earliest offset. It polls up to PollRecords records,
// hands them to the handler one at a time in partition order and commits
// the offsets of the handled records synchronously before it polls again
// (auto-commit is off; rebalances wait for the commit). A crash between
// handling and commit delivers those records again.
//
// Kafka cannot nak a record: a failed record is retried in place after
// the retry delay (or RetryAfter's), up to the max deliveries; then the
// give-up hook runs and the record is committed and skipped. While it
// waits, its partition waits too, and so do rebalances of the group: keep
// retry delays well below the rebalance timeout (60 seconds by default),
// or the member is evicted and its records are delivered again elsewhere.
// Delivery.Attempt counts the deliveries within one subscription only.
//
// Per-key order holds within a group across members, because a partition
// has one member at a time.
package kafka
