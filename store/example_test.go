package store_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// report is an operator's tool written against Admin: it works on
// PostgreSQL and SQLite alike.
func report(ctx context.Context, admin store.Admin) error {
	migrations, err := admin.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	pending := 0
	for _, m := range migrations {
		if !m.Applied {
			pending++
		}
	}
	fmt.Println("pending migrations:", pending)
	streams, err := admin.ListStreams(ctx, "", 10)
	if err != nil {
		return err
	}
	for _, s := range streams {
		fmt.Println(s.StreamID, s.StreamType, "version", s.Version)
	}
	return nil
}

func ExampleAdmin() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "cqrskit-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	s, err := sqlite.Open(ctx, filepath.Join(dir, "events.db"), sqlite.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	_, err = s.Append(ctx, "product-42", event.NoStream, []event.Event{
		{StreamType: "product", Type: "product.created", Data: []byte(`{"name":"pen"}`)},
		{StreamType: "product", Type: "product.renamed", Data: []byte(`{"name":"fountain pen"}`)},
	})
	if err != nil {
		log.Fatal(err)
	}

	if err := report(ctx, s); err != nil {
		log.Fatal(err)
	}
	// Output:
	// pending migrations: 0
	// product-42 product version 2
}
