package messagebus_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/memory"
)

// A relay publishes a batch; a consumer group handles it.
func Example() {
	ctx := context.Background()
	bus, _ := memory.New(memory.Config{})
	defer bus.Close()

	md := event.Metadata{CorrelationID: "req-7"}
	err := bus.Publish(ctx,
		messagebus.Message{ID: "evt-1", Topic: "product", Key: "product-42", Payload: []byte(`{"name":"Lamp"}`), Headers: md.Headers()},
		messagebus.Message{ID: "evt-2", Topic: "product", Key: "product-42", Payload: []byte(`{"price":30}`), Headers: md.Headers()},
	)
	if err != nil {
		fmt.Println(err)
		return
	}

	done := make(chan struct{})
	sub, _ := bus.Subscribe(ctx, "product", "catalog", func(ctx context.Context, d messagebus.Delivery) error {
		fmt.Println(d.ID, d.Key, string(d.Payload), event.MetadataFromHeaders(d.Headers).CorrelationID)
		if d.ID == "evt-2" {
			close(done)
		}
		return nil
	})
	<-done
	_ = sub.Stop(ctx)
	// Output:
	// evt-1 product-42 {"name":"Lamp"} req-7
	// evt-2 product-42 {"price":30} req-7
}

// A handler that cannot proceed yet asks for a redelivery after a delay.
func ExampleRetryAfter() {
	ctx := context.Background()
	bus, _ := memory.New(memory.Config{})
	defer bus.Close()
	_ = bus.Publish(ctx, messagebus.Message{ID: "evt-1", Topic: "order", Key: "order-1"})

	done := make(chan struct{})
	_, _ = bus.Subscribe(ctx, "order", "shipping", func(ctx context.Context, d messagebus.Delivery) error {
		fmt.Println("attempt", d.Attempt)
		if d.Attempt < 3 {
			return messagebus.RetryAfter(errors.New("warehouse busy"), 10*time.Millisecond)
		}
		close(done)
		return nil
	})
	<-done
	// Output:
	// attempt 1
	// attempt 2
	// attempt 3
}

// Publish reports exactly the messages the broker did not take, so a relay
// keeps those rows and deletes the rest.
func ExamplePublishError() {
	ctx := context.Background()
	bus, _ := memory.New(memory.Config{MaxMessageBytes: 100})
	defer bus.Close()

	err := bus.Publish(ctx,
		messagebus.Message{ID: "evt-1", Topic: "product", Key: "product-1"},
		messagebus.Message{ID: "evt-2", Topic: "product", Key: "product-2", Payload: make([]byte, 500)},
		messagebus.Message{ID: "evt-3", Topic: "product", Key: "product-2"},
		messagebus.Message{ID: "evt-4", Topic: "bad topic", Key: "product-3"},
	)
	var pe *messagebus.PublishError
	if errors.As(err, &pe) {
		for _, f := range pe.Failed {
			fmt.Printf("msgs[%d] %s: too large %v, order kept %v, invalid %v\n", f.Index, f.ID,
				errors.Is(f, messagebus.ErrMessageTooLarge), errors.Is(f, messagebus.ErrEarlierFailed), errors.Is(f, messagebus.ErrInvalidArgument))
		}
	}
	// Output:
	// msgs[1] evt-2: too large true, order kept false, invalid false
	// msgs[2] evt-3: too large false, order kept true, invalid false
	// msgs[3] evt-4: too large false, order kept false, invalid true
}

func ExampleWithGiveUp() {
	ctx := context.Background()
	bus, _ := memory.New(memory.Config{})
	defer bus.Close()
	_ = bus.Publish(ctx, messagebus.Message{ID: "evt-1", Topic: "mail", Key: "user-1"})

	done := make(chan struct{})
	_, _ = bus.Subscribe(ctx, "mail", "sender", func(ctx context.Context, d messagebus.Delivery) error {
		return errors.New("smtp down")
	},
		messagebus.WithMaxDeliveries(3),
		messagebus.WithRetryDelay(time.Millisecond),
		messagebus.WithGiveUp(func(ctx context.Context, d messagebus.Delivery, err error) {
			fmt.Printf("gave up on %s after %d deliveries: %v\n", d.ID, d.Attempt, err)
			close(done)
		}),
	)
	<-done
	// Output:
	// gave up on evt-1 after 3 deliveries: smtp down
}
