// Package natsjs is the messagebus.Broker on NATS JetStream (nats.go's
// jetstream package).
//
// # Stream and subjects
//
// New connects (ConnectTimeout; the error names the URL, without its
// password) and provisions one stream, "CQRSKIT" by default, that captures
// <SubjectPrefix>.>: it is created with file storage, or an existing one is
// given the subject it needs and a duplicate window of at least
// DuplicateWindow; a longer window and its other settings are kept. With
// UseExistingStream the stream is used exactly as it is. New logs a
// warning when the stream's window is shorter than RetryHorizon.
//
// A message goes to <prefix>.<topic>.<key token>. The key token is the key
// itself when it is a short word of ASCII letters, digits, '_' and '-' (a
// stream ID such as "product-0190..."); any other key becomes a readable
// prefix plus a hash, and the key travels in the Cqrs-Key header. A key
// token is one subject token, so topic "a" never sees topic "a.b".
//
// # Publishing
//
// Publish sends the messages with PublishMsgAsync and Nats-Msg-Id set to
// the message ID, and waits for their acks (PublishTimeout, ctx). Keys are
// pipelined, but a key has at most one unacknowledged message: its next
// one is sent on the previous one's ack, and not at all after a failure,
// so a lost or negative ack never lets a later message of the key be
// stored before an earlier one. The
// server drops a message whose ID it stored within the duplicate window
// (2 minutes by default) and acknowledges it as a duplicate, so a relay
// that republishes after a crash or a lost ack stores nothing twice. Sizes
// are checked first against the server's max_payload and the stream's
// max_msg_size (payload plus encoded headers). While the connection is
// down Publish fails at once with messagebus.ErrUnavailable: the broker's
// own connection keeps no reconnect buffer, so nothing waits for an ack
// that cannot come. The client reconnects by itself.
//
// # Consuming
//
// Each group has one durable pull consumer per topic, named
// <group>_<topic>_<hash>, with explicit acks, AckWait, MaxDeliver and
// DeliverAll. A subscription pulls up to FetchBatch messages at a time,
// each pull waiting up to a second for them, and hands them to the handler
// one at a time, in stream order, acking each after the handler returns
// nil. It tells the server the fetched messages are in progress every
// AckWait/3 while a handler runs or waits, so a slow handler does not get
// its messages redelivered behind its back. A failed
// message is retried in place after the retry delay (or RetryAfter's), so
// the messages behind it, and its key's order, wait. With NakOnError it is
// nak'd with the delay instead (NakWithDelay) and the subscription moves
// on: other keys are not held up, but the failed message comes back after
// later ones of its key. When the deliveries run out the give-up hook runs
// and the message is terminated (Term). A message whose deliveries the
// server counted out without a handler result (the process died each
// time) is dropped by the server's MaxDeliver without the hook; JetStream
// publishes a MAX_DELIVERIES advisory for it.
//
// # Order and groups
//
// One subscription of a group sees a topic in stream order, so per-key
// order holds. Several subscriptions of one group share the messages
// without regard to keys: use them for throughput when order across
// members does not matter, or run one subscription per group (a standby
// can subscribe too; it just shares the load while both run). Pinned
// consumers (nats-server 2.11 priority groups) would lift this and are not
// used yet, so the broker also runs on older servers.
//
// Stop lets the message in hand finish, naks the fetched messages not yet
// handled, so the group gets them at once and ahead of newer ones rather
// than after AckWait, and flushes the acks and naks before it returns. It
// naks only once the pull in progress has ended: the server would deliver
// the nak'd messages again into that open pull, which the client no longer
// reads (they come back after AckWait), or, finding nobody listening, put
// the first of them back behind the others; either way they would reach
// the group after later messages of their keys. A pull waits at most a
// second, so Stop takes up to a second longer than the handler (its
// context still bounds the wait). A cancelled Subscribe context ends the
// subscription the same way, without waiting for the handler.
//
// # Outages
//
// A subscription outlives its server: it pulls again once the client has
// reconnected, and an ack that could not be sent while the connection was
// down is sent after the reconnect (the server keeps the delivery pending
// across its restart), so a handled message does not come back.
//
// A pull cut short can lose messages on the way. A server that shuts down
// ends open pulls with "409 Server Shutdown" and then goes on delivering
// to them for a moment, after the client stopped listening; a dropped
// connection loses what was in flight. The server counts these messages
// as delivered and sends them again only when AckWait expires. So after
// a pull ends with an error or spans a reconnect (pulls this short carry
// no heartbeats to notice a lost connection) the subscription asks the
// consumer whether anything was delivered past the last message it
// received and is still unacknowledged; if so it waits AckWait before
// pulling on, and the server then redelivers the lost messages ahead of
// newer ones, in stream order. Nothing is lost and per-key order holds, at
// the cost of up to AckWait of delay after an outage: lower AckWait to
// shorten it. In a group with several members the deliveries may be
// another member's; the wait then only delays this one.
//
// A subscription that ends without Stop or its context (the process dies,
// or its connection never comes back) leaves its fetched messages pending:
// the group gets them again after AckWait, behind messages of the same
// keys handled meanwhile by the next subscription. Per-key order holds
// across Stop, a cancelled context and server outages, not across a crash.
// Subscribe does not wait for such messages before its first pull: the
// consumer's state cannot tell them from another member's live deliveries,
// nor from messages a Stop just nak'd (they count as pending until
// redelivered), so waiting would delay every second member, and every
// restart after a Stop in the middle of a backlog, by AckWait. Lower
// AckWait to narrow the window after a crash.
package natsjs
