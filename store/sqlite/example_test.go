package sqlite_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "cqrskit-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	store, err := sqlite.Open(ctx, filepath.Join(dir, "events.db"), sqlite.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	// Create the stream: NoStream fails if someone else already did.
	_, err = store.Append(ctx, "product-42", event.NoStream, []event.Event{
		{StreamType: "product", Type: "product.created", Data: []byte(`{"name":"pen"}`)},
	})
	if err != nil {
		log.Fatal(err)
	}
	// Append only if the stream is still at version 1.
	res, err := store.Append(ctx, "product-42", event.Exactly(1), []event.Event{
		{StreamType: "product", Type: "product.renamed", Data: []byte(`{"name":"fountain pen"}`)},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stream at version", res.Version)

	for e, err := range store.Load(ctx, "product-42", 1) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Version, e.Type, string(e.Data))
	}
	// Output:
	// stream at version 2
	// 1 product.created {"name":"pen"}
	// 2 product.renamed {"name":"fountain pen"}
}
