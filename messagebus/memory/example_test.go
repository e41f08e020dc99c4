package memory_test

import (
	"context"
	"fmt"

	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/memory"
)

// A message republished with the same ID, as a relay does after a lost
// ack, is stored once.
func ExampleNew() {
	ctx := context.Background()
	bus, err := memory.New(memory.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bus.Close()

	m := messagebus.Message{ID: "evt-1", Topic: "product", Key: "product-1", Payload: []byte("created")}
	_ = bus.Publish(ctx, m)
	_ = bus.Publish(ctx, m) // duplicate: acknowledged and dropped
	_ = bus.Publish(ctx, messagebus.Message{ID: "evt-2", Topic: "product", Key: "product-1", Payload: []byte("renamed")})

	done := make(chan struct{})
	sub, _ := bus.Subscribe(ctx, "product", "search-index", func(ctx context.Context, d messagebus.Delivery) error {
		fmt.Println(d.ID, string(d.Payload))
		if d.ID == "evt-2" {
			close(done)
		}
		return nil
	})
	<-done
	_ = sub.Stop(ctx)
	// Output:
	// evt-1 created
	// evt-2 renamed
}
