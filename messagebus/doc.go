// Package messagebus moves events from the outbox to consumers through a
// broker: NATS JetStream (natsjs), Kafka (kafka) or in memory (memory).
// The core defines the Message, the Publisher and Subscriber a relay and a
// consumer need, and the semantics every Broker shares; bustest checks
// them against each implementation.
//
// # Messages
//
// A Message carries an event: ID is the event ID and the broker's
// de-duplication key, Topic names the channel, Key (the event's stream ID)
// orders messages, Payload is the encoded event and Headers carry its
// metadata (event.Metadata.Headers; event.MetadataFromHeaders reads them
// back). Topic names and group names follow one portable rule
// (ValidateTopic, ValidateGroup), so an application moves between brokers
// unchanged.
//
// # Publishing
//
// Publish sends a batch pipelined across keys, without a round trip per
// message (a key's messages go one ack after another), and returns once the broker acknowledged every message, or with a
// *PublishError naming each message it did not (Failed, Indexes). The
// other messages of the call were stored. A failed message may have been
// stored all the same (its ack was lost), so republish it with the same ID:
// NATS JetStream and the memory broker drop an ID they stored within their
// duplicate window; Kafka stores it again and consumers see the duplicate
// with the same ID.
//
// Messages with the same key are stored in the order given. After one
// fails, whether before it was sent or after (a rejection, a lost ack), no
// later message with that key in the call is sent (ErrEarlierFailed): the
// broker holds a prefix of the key's messages, and a retry of the failed
// ones keeps the key's order. Bad input fails only the message concerned, with a
// *ValidationError (ErrInvalidArgument) naming the field and value, or a
// *MessageTooLargeError (ErrMessageTooLarge) with the size and the limit.
// An unreachable broker fails fast with ErrUnavailable; ctx bounds the wait.
//
// # Consuming
//
// Subscribe joins a durable consumer group on a topic. A new group starts
// with the oldest message the broker keeps; a group that existed continues
// after its last acknowledged message, also when no member ran for a
// while. The handler gets one message at a time. Returning nil
// acknowledges it. An error (or a panic) has it delivered again after the
// retry delay, or after the delay the handler asked for with RetryAfter;
// Delivery.Attempt counts the deliveries. After WithMaxDeliveries
// deliveries the give-up hook (WithGiveUp; a log line by default) runs and
// the message is acknowledged and skipped. Deliveries are unlimited by
// default, so a message is never dropped silently: a poison message stops
// its subscription until it is fixed, skipped by the handler, or a limit is
// set. Wrap handlers in handler.Idempotent for exactly-once effects: the
// bus delivers at least once.
//
// Failed messages are retried in place: the subscription waits and hands
// the same message to the handler again before any later one, so per-key
// order survives failures. A long wait holds back the messages behind it;
// natsjs can nak instead (Config.NakOnError) and give up that order.
//
// Stop lets the message in hand finish and be acknowledged; its context's
// deadline bounds that wait, after which the handler's context is
// cancelled. Cancelling Subscribe's context stops the subscription hard.
//
// # Guarantees by broker
//
//	                                memory       natsjs               kafka
//	duplicate IDs dropped           2m window    stream duplicate     no: delivered again,
//	                                             window (2m)          same ID
//	per-key order, one member       yes          yes                  yes
//	per-key order, several members  yes (one     no: members share    yes (a partition
//	of one group                    consumes,    the key's messages   has one member)
//	                                others wait)
//	order kept across retries       yes          yes (not with        yes
//	                                             NakOnError)
//	Attempt counted across restarts yes          yes                  no (per member)
//
// Nothing is ordered across keys or topics.
package messagebus
