package kafka_test

import (
	"context"
	"log"

	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/kafka"
)

func ExampleNew() {
	ctx := context.Background()
	bus, err := kafka.New(ctx, kafka.Config{
		Brokers:    []string{"127.0.0.1:9092"},
		Partitions: 12, // for topics the broker creates; choose once
	})
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()

	sub, err := bus.Subscribe(ctx, "product", "search-index", func(ctx context.Context, d messagebus.Delivery) error {
		log.Printf("%s %s attempt %d", d.ID, d.Key, d.Attempt)
		return nil // committed after the poll's records are handled
	}, messagebus.WithMaxDeliveries(5))
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Stop(ctx)
}
