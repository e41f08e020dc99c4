package driver_test

import (
	"errors"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/driver"
	"github.com/cqrskit/cqrskit/messagebus"
)

func TestNewSubscribeConfig(t *testing.T) {
	def := messagebus.SubscribeConfig{MaxDeliveries: 5, RetryDelay: time.Second}
	c, err := driver.NewSubscribeConfig(def, messagebus.WithMaxDeliveries(-1), messagebus.WithRetryDelay(time.Minute), nil)
	if err != nil || c.MaxDeliveries != 0 || c.RetryDelay != time.Minute {
		t.Errorf("NewSubscribeConfig = %+v, %v", c, err)
	}
	if c, _ := driver.NewSubscribeConfig(def); c.MaxDeliveries != 5 || c.RetryDelay != time.Second {
		t.Errorf("defaults not kept: %+v", c)
	}
	if _, err := driver.NewSubscribeConfig(def, messagebus.WithRetryDelay(-1)); !errors.Is(err, messagebus.ErrInvalidArgument) {
		t.Errorf("negative retry delay = %v, want ErrInvalidArgument", err)
	}
}
