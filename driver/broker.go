package driver

import (
	"fmt"
	"strconv"

	"github.com/cqrskit/cqrskit/messagebus"
)

// NewSubscribeConfig applies opts to defaults (the broker's Config) and
// validates the result. A bad option is a *messagebus.ValidationError.
func NewSubscribeConfig(defaults messagebus.SubscribeConfig, opts ...messagebus.SubscribeOption) (messagebus.SubscribeConfig, error) {
	c := defaults
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.RetryDelay < 0 {
		return c, &messagebus.ValidationError{Field: "RetryDelay", Value: c.RetryDelay.String(), Reason: "retry delay must not be negative"}
	}
	if c.Concurrency < 0 || c.Concurrency > messagebus.MaxConcurrency {
		return c, &messagebus.ValidationError{Field: "Concurrency", Value: strconv.Itoa(c.Concurrency),
			Reason: fmt.Sprintf("concurrency must be between 0 and %d", messagebus.MaxConcurrency)}
	}
	return c, nil
}

// ValidateSubscribe checks the arguments of messagebus.Subscriber's
// Subscribe: the topic and group names every broker accepts and a non-nil
// handler.
func ValidateSubscribe(topic, group string, h messagebus.Handler) error {
	if err := messagebus.ValidateTopic(topic); err != nil {
		return err
	}
	if err := messagebus.ValidateGroup(group); err != nil {
		return err
	}
	if h == nil {
		return &messagebus.ValidationError{Field: "handler", Value: "nil", Reason: "a handler is required"}
	}
	return nil
}
