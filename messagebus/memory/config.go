package memory

import (
	"cmp"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/cqrskit/cqrskit/messagebus"
)

// Config configures a Broker. The zero value is ready to use.
type Config struct {
	// DuplicateWindow is how long a published ID is remembered: a message
	// whose ID was stored within the window is acknowledged and dropped.
	// Defaults to 2 minutes.
	DuplicateWindow time.Duration
	// MaxMessageBytes limits Message.Size. Defaults to 1 MiB.
	MaxMessageBytes int
	// MaxDeliveries is the subscriptions' default number of deliveries
	// before giving up on a message. Defaults to 0: unlimited.
	MaxDeliveries int
	// RetryDelay is the subscriptions' default wait before a failed message
	// is delivered again. Defaults to 1 second.
	RetryDelay time.Duration
	// Logger receives failures and give-ups. Defaults to slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	c.DuplicateWindow = cmp.Or(c.DuplicateWindow, 2*time.Minute)
	c.MaxMessageBytes = cmp.Or(c.MaxMessageBytes, 1<<20)
	c.RetryDelay = cmp.Or(c.RetryDelay, time.Second)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	bad := func(field, value, reason string) {
		errs = append(errs, &messagebus.ValidationError{Field: field, Value: value, Reason: reason})
	}
	if c.DuplicateWindow < 0 {
		bad("DuplicateWindow", c.DuplicateWindow.String(), "must not be negative")
	}
	if c.MaxMessageBytes < 0 {
		bad("MaxMessageBytes", strconv.Itoa(c.MaxMessageBytes), "must not be negative")
	}
	if c.MaxDeliveries < 0 {
		bad("MaxDeliveries", strconv.Itoa(c.MaxDeliveries), "must not be negative (0 is unlimited)")
	}
	if c.RetryDelay < 0 {
		bad("RetryDelay", c.RetryDelay.String(), "must not be negative")
	}
	return errors.Join(errs...)
}
