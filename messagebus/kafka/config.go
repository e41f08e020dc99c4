package kafka

import (
	"cmp"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cqrskit/cqrskit/messagebus"
)

// Config configures a Broker. The zero value connects to a local broker.
type Config struct {
	// Brokers are the seed brokers, "host:port". Defaults to
	// ["127.0.0.1:9092"].
	Brokers []string
	// ClientID names the clients to the brokers. Defaults to "cqrskit".
	ClientID string
	// Options are extra franz-go options (TLS, SASL, ...), applied after the
	// broker's own to every client it creates.
	Options []kgo.Opt
	// DialTimeout bounds each connection attempt; New fails if no seed
	// broker answers within it. Defaults to 5 seconds.
	DialTimeout time.Duration

	// Partitions of the topics the broker creates. Defaults to 3. Choose
	// it once: adding partitions later moves keys to other partitions,
	// and their order is lost across the move.
	Partitions int32
	// ReplicationFactor of the topics the broker creates. Defaults to -1:
	// the cluster's default.
	ReplicationFactor int16
	// DisableTopicCreation makes the broker use topics as they are; a
	// missing topic fails Publish and Subscribe. Defaults to false: a topic
	// is created on its first Publish or Subscribe.
	DisableTopicCreation bool

	// MaxMessageBytes limits a message's key, payload and headers; a larger
	// message fails before it is produced. Keep it below the topics'
	// max.message.bytes. Defaults to 1,000,000.
	MaxMessageBytes int
	// PublishTimeout is how long a message may take to be acknowledged,
	// retries included (franz-go's RecordDeliveryTimeout). Defaults to 30
	// seconds.
	PublishTimeout time.Duration

	// MaxDeliveries is the subscriptions' default number of deliveries
	// before giving up on a message (see messagebus.WithMaxDeliveries).
	// Defaults to 0: unlimited.
	MaxDeliveries int
	// RetryDelay is the subscriptions' default wait before a failed message
	// is handled again. Defaults to 1 second.
	RetryDelay time.Duration
	// PollRecords is the most records a subscription takes per poll; their
	// offsets are committed together after they are handled. Defaults to
	// 500.
	PollRecords int

	// Logger receives failures and give-ups. Defaults to slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if len(c.Brokers) == 0 {
		c.Brokers = []string{"127.0.0.1:9092"}
	}
	c.ClientID = cmp.Or(c.ClientID, "cqrskit")
	c.DialTimeout = cmp.Or(c.DialTimeout, 5*time.Second)
	c.Partitions = cmp.Or(c.Partitions, 3)
	c.ReplicationFactor = cmp.Or(c.ReplicationFactor, -1)
	c.MaxMessageBytes = cmp.Or(c.MaxMessageBytes, 1_000_000)
	c.PublishTimeout = cmp.Or(c.PublishTimeout, 30*time.Second)
	c.RetryDelay = cmp.Or(c.RetryDelay, time.Second)
	c.PollRecords = cmp.Or(c.PollRecords, 500)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// validate reports every invalid field; c has its defaults.
func (c Config) validate() error {
	var errs []error
	bad := func(field, value, reason string) {
		errs = append(errs, &messagebus.ValidationError{Field: field, Value: value, Reason: reason})
	}
	for i, b := range c.Brokers {
		if host, port, ok := strings.Cut(b, ":"); !ok || host == "" || port == "" {
			bad("Brokers["+strconv.Itoa(i)+"]", b, "broker address must be host:port")
		}
	}
	nonNegative := func(field string, d time.Duration) {
		if d < 0 {
			bad(field, d.String(), "must not be negative")
		}
	}
	nonNegative("DialTimeout", c.DialTimeout)
	nonNegative("PublishTimeout", c.PublishTimeout)
	nonNegative("RetryDelay", c.RetryDelay)
	if c.Partitions < 1 {
		bad("Partitions", strconv.Itoa(int(c.Partitions)), "must be at least 1")
	}
	if c.ReplicationFactor < -1 || c.ReplicationFactor == 0 {
		bad("ReplicationFactor", strconv.Itoa(int(c.ReplicationFactor)), "must be at least 1, or -1 for the cluster's default")
	}
	if c.MaxMessageBytes < 1 || c.MaxMessageBytes > 1<<30 {
		bad("MaxMessageBytes", strconv.Itoa(c.MaxMessageBytes), "must be 1 to 1 GiB")
	}
	if c.MaxDeliveries < 0 {
		bad("MaxDeliveries", strconv.Itoa(c.MaxDeliveries), "must not be negative (0 is unlimited)")
	}
	if c.PollRecords < 1 {
		bad("PollRecords", strconv.Itoa(c.PollRecords), "must be at least 1")
	}
	return errors.Join(errs...)
}
