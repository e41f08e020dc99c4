package memory_test

import (
	"context"
	"fmt"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store/memory"
)

func Example() {
	ctx := context.Background()
	store := memory.New()

	_, err := store.Append(ctx, "order-1", event.NoStream, []event.Event{
		{Type: "order.placed", Data: []byte(`{"total":30}`)},
		{Type: "order.paid", Data: []byte(`{}`)},
	})
	if err != nil {
		panic(err)
	}
	// A writer that read the stream at version 1 is too late.
	_, err = store.Append(ctx, "order-1", event.Exactly(1), []event.Event{{Type: "order.cancelled", Data: []byte(`{}`)}})
	fmt.Println(err)

	for e, err := range store.Load(ctx, "order-1", 1) {
		if err != nil {
			panic(err)
		}
		fmt.Println(e.Version, e.Type)
	}

	// Every appended event waits in the outbox for the relay.
	stats, _ := store.Stats(ctx)
	fmt.Println("outbox backlog:", stats.Backlog)
	// Output:
	// append to stream order-1: expected version 1, stream is at version 2: concurrency conflict
	// 1 order.placed
	// 2 order.paid
	// outbox backlog: 2
}
