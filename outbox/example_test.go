package outbox_test

import (
	"context"
	"fmt"
	"log"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/messagebus"
	busmem "github.com/cqrskit/cqrskit/messagebus/memory"
	"github.com/cqrskit/cqrskit/outbox"
	"github.com/cqrskit/cqrskit/store/memory"
)

// Appending events writes their outbox rows in the same step; the relay
// publishes them in order and deletes each row once the broker has
// acknowledged it. DrainOnce does one pass; a service calls Run instead,
// which keeps draining until its context ends.
func ExampleRelay_DrainOnce() {
	ctx := context.Background()
	store := memory.New()
	broker, err := busmem.New(busmem.Config{}) // NATS JetStream or Kafka in production
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	_, err = store.Append(ctx, "product-42", event.NoStream, []event.Event{
		{StreamType: "product", Type: "product.created", Data: []byte(`{"name":"Widget"}`)},
		{StreamType: "product", Type: "product.renamed", Data: []byte(`{"name":"Gadget"}`)},
	})
	if err != nil {
		log.Fatal(err)
	}

	relay, err := outbox.NewRelay(outbox.Config{Store: store, Publisher: broker})
	if err != nil {
		log.Fatal(err)
	}
	n, err := relay.DrainOnce(ctx)
	if err != nil {
		log.Fatal(err)
	}
	p, err := relay.Progress(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("published", n, "backlog", p.Backlog)

	got := make(chan messagebus.Delivery)
	sub, err := broker.Subscribe(ctx, outbox.DefaultTopic(event.Event{StreamType: "product"}), "search-index",
		func(ctx context.Context, d messagebus.Delivery) error { got <- d; return nil })
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Stop(ctx)
	for range 2 {
		d := <-got
		fmt.Println(d.Topic, d.Key, string(d.Payload))
	}
	// Output:
	// published 2 backlog 0
	// product product-42 {"name":"Widget"}
	// product product-42 {"name":"Gadget"}
}
