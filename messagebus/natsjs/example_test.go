package natsjs_test

import (
	"context"
	"log"
	"time"

	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/natsjs"
)

func ExampleNew() {
	ctx := context.Background()
	bus, err := natsjs.New(ctx, natsjs.Config{
		URL:           "nats://127.0.0.1:4222",
		Stream:        "SHOP", // stores <prefix>.> ...
		SubjectPrefix: "shop", // ... e.g. shop.product.product-0190f3a2
		MaxDeliveries: 10,     // then the give-up hook, and Term
		RetryDelay:    2 * time.Second,
	})
	if err != nil {
		log.Fatal(err) // names the URL; errors.Is(err, messagebus.ErrUnavailable) if unreachable
	}
	defer bus.Close()

	err = bus.Publish(ctx, messagebus.Message{ID: "0190f3a2-...", Topic: "product", Key: "product-0190f3a2", Payload: []byte(`{}`)})
	if err != nil {
		log.Print(err) // a *messagebus.PublishError naming each failed message
	}
}
