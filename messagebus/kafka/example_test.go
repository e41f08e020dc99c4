package kafka_test

import (
	"context"
	"fmt"
	"log"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/kafka"
)

func ExampleNew() {
	// An in-process cluster for the example; a service names its brokers,
	// e.g. 127.0.0.1:9092.
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		log.Fatal(err)
	}
	defer cluster.Close()

	ctx := context.Background()
	bus, err := kafka.New(ctx, kafka.Config{
		Brokers:    cluster.ListenAddrs(),
		Partitions: 12, // for topics the broker creates; choose once
	})
	if err != nil {
		log.Fatal(err) // errors.Is(err, messagebus.ErrUnavailable) if unreachable
	}
	defer bus.Close()

	err = bus.Publish(ctx, messagebus.Message{ID: "0190f3a2-0001", Topic: "product", Key: "product-0190f3a2", Payload: []byte(`{"name":"Widget"}`)})
	if err != nil {
		log.Fatal(err) // a *messagebus.PublishError naming each failed message
	}

	done := make(chan struct{})
	sub, err := bus.Subscribe(ctx, "product", "search-index", func(ctx context.Context, d messagebus.Delivery) error {
		fmt.Println(d.ID, d.Key, string(d.Payload), "attempt", d.Attempt)
		close(done)
		return nil // committed after the poll's records are handled
	}, messagebus.WithMaxDeliveries(5))
	if err != nil {
		log.Fatal(err)
	}
	<-done // a new group starts at the earliest offset
	if err := sub.Stop(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// 0190f3a2-0001 product-0190f3a2 {"name":"Widget"} attempt 1
}
