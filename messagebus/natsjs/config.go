package natsjs

import (
	"cmp"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqrskit/cqrskit/messagebus"
)

// Config configures a Broker. The zero value connects to a local server
// and provisions the stream "CQRSKIT" with file storage.
type Config struct {
	// URL names the NATS server, or several separated by commas. Defaults
	// to nats://127.0.0.1:4222. Ignored when Conn is set.
	URL string
	// Conn is a connection to use instead of dialing URL; the broker does
	// not close it. Publish fails fast during an outage only if the
	// connection's reconnect buffer is disabled (nats.ReconnectBufSize(-1),
	// as on the broker's own connection); otherwise messages published
	// while disconnected wait for PublishTimeout or the context.
	Conn *nats.Conn
	// Options are extra nats.Connect options (credentials, TLS, name),
	// applied after the broker's own.
	Options []nats.Option
	// ConnectTimeout bounds the first connection. Defaults to 5 seconds.
	ConnectTimeout time.Duration

	// Stream is the JetStream stream that stores every topic. Defaults to
	// "CQRSKIT".
	Stream string
	// SubjectPrefix starts every subject: <prefix>.<topic>.<key token>.
	// The stream captures <prefix>.>. Defaults to "cqrskit".
	SubjectPrefix string
	// UseExistingStream makes New use the stream as it is: it must exist
	// and capture <prefix>.>. Defaults to false: the stream is created, or
	// an existing one gets the subject it needs and a duplicate window of
	// at least DuplicateWindow (a longer one is kept, as are its other
	// settings).
	UseExistingStream bool
	// Storage of a created stream. Defaults to jetstream.FileStorage.
	Storage jetstream.StorageType
	// Replicas of a created stream. Defaults to 1.
	Replicas int
	// DuplicateWindow is how long the server remembers message IDs and
	// drops republished duplicates. It must cover the longest time a
	// publisher may take to republish after a lost ack (RetryHorizon).
	// New never shortens an existing stream's window. Defaults to 2
	// minutes.
	DuplicateWindow time.Duration
	// RetryHorizon is the longest time a publisher is expected to take to
	// republish a message whose ack was lost: the lost publish, the
	// relay's backoff and the republish. New logs a warning when the
	// stream's duplicate window is shorter, since a republish after it is
	// stored twice (consumers then drop it by its ID). Defaults to 3 x
	// PublishTimeout (30 seconds): the publish that lost its ack, a relay
	// backoff at most as long, and the republish.
	RetryHorizon time.Duration
	// MaxAge is how long a created stream keeps messages. Defaults to 0:
	// forever.
	MaxAge time.Duration

	// PublishTimeout bounds one Publish call: the wait for its acks,
	// including those of a key's messages sent one after another. Defaults
	// to 10 seconds.
	PublishTimeout time.Duration

	// MaxDeliveries is the subscriptions' default number of deliveries
	// before giving up on a message (see messagebus.WithMaxDeliveries).
	// Defaults to 0: unlimited.
	MaxDeliveries int
	// AckWait is how long the server waits for an ack before delivering a
	// message again. Subscriptions extend it while a handler runs or waits
	// to retry, so it matters when a process dies, and after an outage
	// that lost messages on their way to a subscription, which then waits
	// AckWait for them (see Outages in the package documentation).
	// Defaults to 30 seconds.
	AckWait time.Duration
	// RetryDelay is the subscriptions' default wait before a failed message
	// is delivered again (the nak delay). Defaults to 1 second.
	RetryDelay time.Duration
	// NakOnError makes a subscription nak a failed message with the retry
	// delay and move on, so the server redelivers it later, possibly to
	// another member of the group. Later messages, including ones with the
	// same key, are handled meanwhile: per-key order no longer holds for
	// failed messages. Defaults to false: retry in place, keeping order.
	NakOnError bool
	// FetchBatch is how many messages a subscription pulls per request.
	// Defaults to 256.
	FetchBatch int

	// Logger receives connection events, failures and give-ups. Defaults
	// to slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	c.URL = cmp.Or(c.URL, nats.DefaultURL)
	c.ConnectTimeout = cmp.Or(c.ConnectTimeout, 5*time.Second)
	c.Stream = cmp.Or(c.Stream, "CQRSKIT")
	c.SubjectPrefix = cmp.Or(c.SubjectPrefix, "cqrskit")
	c.Replicas = cmp.Or(c.Replicas, 1)
	c.DuplicateWindow = cmp.Or(c.DuplicateWindow, 2*time.Minute)
	c.PublishTimeout = cmp.Or(c.PublishTimeout, 10*time.Second)
	c.RetryHorizon = cmp.Or(c.RetryHorizon, 3*c.PublishTimeout)
	c.AckWait = cmp.Or(c.AckWait, 30*time.Second)
	c.RetryDelay = cmp.Or(c.RetryDelay, time.Second)
	c.FetchBatch = cmp.Or(c.FetchBatch, 256)
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
	if c.Stream == "" || strings.ContainsAny(c.Stream, ".*> \t\r\n/\\") || len(c.Stream) > 200 {
		bad("Stream", c.Stream, "stream name must be 1 to 200 characters without '.', '*', '>', '/', '\\' or whitespace")
	}
	if err := messagebus.ValidateTopic(c.SubjectPrefix); err != nil {
		bad("SubjectPrefix", c.SubjectPrefix, "subject prefix must be dot-separated words of ASCII letters, digits, '_' and '-'")
	}
	if c.Storage != jetstream.FileStorage && c.Storage != jetstream.MemoryStorage {
		bad("Storage", c.Storage.String(), "storage must be jetstream.FileStorage or jetstream.MemoryStorage")
	}
	positive := func(field string, d time.Duration) {
		if d < 0 {
			bad(field, d.String(), "must not be negative")
		}
	}
	positive("ConnectTimeout", c.ConnectTimeout)
	positive("DuplicateWindow", c.DuplicateWindow)
	positive("MaxAge", c.MaxAge)
	positive("PublishTimeout", c.PublishTimeout)
	positive("RetryHorizon", c.RetryHorizon)
	positive("AckWait", c.AckWait)
	positive("RetryDelay", c.RetryDelay)
	if c.MaxAge > 0 && c.DuplicateWindow > c.MaxAge {
		bad("DuplicateWindow", c.DuplicateWindow.String(), "must not exceed MaxAge "+c.MaxAge.String())
	}
	if c.AckWait > 0 && c.AckWait < time.Second {
		bad("AckWait", c.AckWait.String(), "must be at least 1s")
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		bad("Replicas", strconv.Itoa(c.Replicas), "must be 1 to 5")
	}
	if c.MaxDeliveries < 0 {
		bad("MaxDeliveries", strconv.Itoa(c.MaxDeliveries), "must not be negative (0 is unlimited)")
	}
	if c.FetchBatch < 1 || c.FetchBatch > 10_000 {
		bad("FetchBatch", strconv.Itoa(c.FetchBatch), "must be 1 to 10000")
	}
	return errors.Join(errs...)
}
