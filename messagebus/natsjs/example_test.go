package natsjs_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/cqrskit/cqrskit/internal/exampletb"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/natsjs"
	"github.com/cqrskit/cqrskit/testutil/natstest"
)

func ExampleNew() {
	// An in-process server for the example; a service names its own, e.g.
	// nats://127.0.0.1:4222.
	t := exampletb.New("ExampleNew")
	defer t.Done()
	url := natstest.URL(t)

	ctx := context.Background()
	bus, err := natsjs.New(ctx, natsjs.Config{
		URL:           url,
		Stream:        "SHOP", // stores <prefix>.> ...
		SubjectPrefix: "shop", // ... e.g. shop.product.product-0190f3a2
		MaxDeliveries: 10,     // then the give-up hook, and Term
		RetryDelay:    2 * time.Second,
	})
	if err != nil {
		log.Fatal(err) // names the URL; errors.Is(err, messagebus.ErrUnavailable) if unreachable
	}
	defer bus.Close()

	m := messagebus.Message{ID: "0190f3a2-0001", Topic: "product", Key: "product-0190f3a2", Payload: []byte(`{"name":"Widget"}`)}
	for range 2 { // a republish with the same ID, as after a lost ack, is stored once
		if err := bus.Publish(ctx, m); err != nil {
			log.Fatal(err) // a *messagebus.PublishError naming each failed message
		}
	}

	got := make(chan messagebus.Delivery, 2)
	sub, err := bus.Subscribe(ctx, "product", "search-index", func(ctx context.Context, d messagebus.Delivery) error {
		got <- d
		return nil // acknowledged
	})
	if err != nil {
		log.Fatal(err)
	}
	d := <-got
	fmt.Println(d.ID, d.Key, string(d.Payload), "attempt", d.Attempt)
	if err := sub.Stop(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("more deliveries:", len(got))
	// Output:
	// 0190f3a2-0001 product-0190f3a2 {"name":"Widget"} attempt 1
	// more deliveries: 0
}
