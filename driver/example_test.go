package driver_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/driver"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/messagebus"
)

// An event store's Append prepares the events, then skips those an
// earlier attempt already stored.
func Example() {
	events := []event.Event{
		{Type: "account.opened", Data: []byte(`{}`)},
		{Type: "account.credited", Data: []byte(`{"amount":5}`)},
	}
	prepared, err := driver.PrepareAppend("account-1", event.NoStream, events)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(prepared[0].StreamID, prepared[0].SchemaVersion, prepared[0].ID.Version())

	// The first event was stored by an attempt whose reply was lost.
	stored := map[uuid.UUID]driver.StoredAt{prepared[0].ID: {Stream: "account-1", Version: 1}}
	fresh, err := driver.SkipStored("account-1", prepared, stored)
	fmt.Println(len(fresh), fresh[0].Type, err)

	// The same ID in another stream is a duplicate, not a retry.
	stored = map[uuid.UUID]driver.StoredAt{prepared[0].ID: {Stream: "account-2", Version: 1}}
	_, err = driver.SkipStored("account-1", prepared, stored)
	fmt.Println(errors.Is(err, event.ErrDuplicateEventID))

	_, err = driver.PrepareAppend("account-1", event.Any, []event.Event{{Type: "account.opened"}})
	fmt.Println(err)
	// Output:
	// account-1 1 VERSION_7
	// 1 account.credited <nil>
	// true
	// invalid event: events[0].Data "nil": payload must not be nil
}

// A broker's Subscribe checks its arguments and applies the caller's
// options to the broker's defaults.
func ExampleNewSubscribeConfig() {
	h := func(ctx context.Context, d messagebus.Delivery) error { return nil }
	if err := driver.ValidateSubscribe("billing.invoice", "mailer", h); err != nil {
		fmt.Println(err)
		return
	}
	defaults := messagebus.SubscribeConfig{RetryDelay: time.Second}
	cfg, err := driver.NewSubscribeConfig(defaults, messagebus.WithMaxDeliveries(5), messagebus.WithConcurrency(4))
	fmt.Println(cfg.MaxDeliveries, cfg.RetryDelay, cfg.Concurrency, err)

	_, err = driver.NewSubscribeConfig(defaults, messagebus.WithConcurrency(-1))
	fmt.Println(errors.Is(err, messagebus.ErrInvalidArgument))
	fmt.Println(driver.ValidateSubscribe("billing.invoice", "mailer", nil))
	// Output:
	// 5 1s 4 <nil>
	// true
	// invalid argument: handler "nil": a handler is required
}
