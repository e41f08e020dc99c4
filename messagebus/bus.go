package messagebus

import (
	"context"
	"time"
)

// Publisher sends messages to a broker.
type Publisher interface {
	// Publish sends msgs and returns after the broker acknowledged every
	// one of them, or with a *PublishError listing the ones it did not.
	// Messages with the same key are stored in the order given; after one
	// fails, whether before or after it was sent, no later message with
	// that key in the call is sent (each reports an error wrapping
	// ErrEarlierFailed). So the broker holds a prefix of each key's
	// messages, and publishing the failed ones again, in order, keeps the
	// key's order. Messages with different keys, or none, are pipelined
	// and may be stored in any order. Publishing no messages is a no-op.
	Publish(ctx context.Context, msgs ...Message) error
}

// Handler handles one delivery. Returning nil acknowledges the message;
// an error has it delivered again after the retry delay (see RetryAfter),
// until the subscription's max deliveries are used up. A panic counts as an
// error. ctx is cancelled when the subscription is stopped hard.
type Handler func(ctx context.Context, d Delivery) error

// Subscriber starts durable consumer groups.
type Subscriber interface {
	// Subscribe joins the durable consumer group named group on topic and
	// hands its messages to h, one at a time, until the subscription is
	// stopped or ctx is cancelled. It returns once the group exists at the
	// broker, so setup errors (an invalid topic, an unreachable broker)
	// surface here. A new group starts with the oldest message the broker
	// keeps; an existing group continues after its last acknowledged
	// message. Subscriptions of one group share its messages.
	Subscribe(ctx context.Context, topic, group string, h Handler, opts ...SubscribeOption) (Subscription, error)
}

// Subscription is a running member of a consumer group.
type Subscription interface {
	// Stop stops taking messages, lets the handler finish the message in
	// hand, acknowledges it and leaves the group; the group's position is
	// kept. A retry wait in progress is abandoned: that message is
	// delivered again later. If ctx ends first, the handler's context is
	// cancelled and Stop returns ctx's error without waiting further.
	Stop(ctx context.Context) error
	// Done is closed when the subscription has ended.
	Done() <-chan struct{}
	// Err reports why the subscription ended: nil after Stop or the
	// cancellation of Subscribe's context, ErrClosed after the broker was
	// closed, otherwise the error that ended it. Nil while running.
	Err() error
}

// Broker publishes and subscribes. Close stops every subscription hard and
// releases the connection; later calls fail with ErrClosed.
type Broker interface {
	Publisher
	Subscriber
	Close() error
}

// SubscribeConfig is the resolved per-subscription configuration; see the
// With options. Broker implementations start from their Config's defaults
// and apply the options with driver.NewSubscribeConfig.
type SubscribeConfig struct {
	// MaxDeliveries is how many times a message is handed to the handler
	// before the subscription gives up on it; 0 or less is unlimited.
	MaxDeliveries int
	// RetryDelay is the wait before a failed message is delivered again,
	// unless the handler asked for another with RetryAfter.
	RetryDelay time.Duration
	// OnGiveUp is called when a message's deliveries are used up, before
	// the message is acknowledged (terminated) and skipped. nil logs it.
	OnGiveUp func(ctx context.Context, d Delivery, err error)
	// Concurrency is how many messages the subscription hands to its
	// handler at once; see WithConcurrency. 0 or 1 is one at a time.
	Concurrency int
}

// SubscribeOption changes one subscription's configuration.
type SubscribeOption func(*SubscribeConfig)

// WithMaxDeliveries gives up on a message after n deliveries; n <= 0 means
// unlimited.
func WithMaxDeliveries(n int) SubscribeOption {
	return func(c *SubscribeConfig) { c.MaxDeliveries = max(n, 0) }
}

// WithRetryDelay sets the wait before a failed message is delivered again.
func WithRetryDelay(d time.Duration) SubscribeOption {
	return func(c *SubscribeConfig) { c.RetryDelay = d }
}

// WithGiveUp sets the function called when a message's deliveries are used
// up. Use it to dead-letter the message or raise an alert; the message is
// skipped when it returns.
func WithGiveUp(f func(ctx context.Context, d Delivery, err error)) SubscribeOption {
	return func(c *SubscribeConfig) { c.OnGiveUp = f }
}

// WithConcurrency lets the subscription hand up to n messages to its
// handler at once, keeping per-key order: the messages of one key go to the
// same of n lanes and are handled one at a time, in order, each after the
// one before it was handled (or given up on). A failing message holds back
// its lane while it is retried, not the other lanes' messages fetched with
// it; the next fetch waits until every lane is done, so a message retried
// for long holds back the messages fetched after it. Use it with a handler that
// is safe for concurrent use; a handler.Batcher then commits the messages
// of several lanes in one transaction. n <= 1 handles one message at a
// time.
func WithConcurrency(n int) SubscribeOption {
	return func(c *SubscribeConfig) { c.Concurrency = n }
}

// MaxConcurrency is the most lanes WithConcurrency accepts.
const MaxConcurrency = 1024
