package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/internal/exampletb"
	"github.com/cqrskit/cqrskit/messagebus"
	busmem "github.com/cqrskit/cqrskit/messagebus/memory"
	"github.com/cqrskit/cqrskit/outbox"
	"github.com/cqrskit/cqrskit/store/postgres"
	"github.com/cqrskit/cqrskit/testutil/pgtest"
)

// A relay process: run as many as you like against one database; one is
// active (it holds the advisory lock), the others stand by, and the active
// one is woken by LISTEN/NOTIFY. A service runs it until a signal
// (signal.NotifyContext); here it stops after the first delivery.
// TestRelayLeaderFailover shows the failover between two.
func ExampleStore_Leader() {
	// A database of the example's own; a service opens its DATABASE_URL.
	t := exampletb.New("ExampleStore_Leader")
	defer t.Done()
	url := pgtest.New(t).URL

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	db, err := sql.Open("pgx", url)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	store, err := postgres.New(db, postgres.Config{})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	leader, err := store.Leader(postgres.LeaderConfig{})
	if err != nil {
		log.Fatal(err)
	}
	// LISTEN needs a connection of its own, opened from the URL.
	listener, err := store.Listener(url)
	if err != nil {
		log.Fatal(err)
	}
	broker, err := busmem.New(busmem.Config{}) // NATS JetStream or Kafka in production
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()
	sub, err := broker.Subscribe(ctx, "product", "search-index", func(ctx context.Context, d messagebus.Delivery) error {
		fmt.Println(d.Topic, d.Key, string(d.Payload))
		stop()
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Stop(context.Background())

	relay, err := outbox.NewRelay(outbox.Config{Store: store, Publisher: broker, Leader: leader, Notifier: listener})
	if err != nil {
		log.Fatal(err)
	}
	_, err = store.Append(ctx, "product-42", event.NoStream, []event.Event{
		{StreamType: "product", Type: "product.created", Data: []byte(`{"name":"Widget"}`)},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := relay.Run(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// product product-42 {"name":"Widget"}
}
