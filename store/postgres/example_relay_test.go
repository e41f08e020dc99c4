package postgres_test

import (
	"context"
	"database/sql"
	"log"
	"os"
	"os/signal"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	busmem "github.com/cqrskit/cqrskit/messagebus/memory"
	"github.com/cqrskit/cqrskit/outbox"
	"github.com/cqrskit/cqrskit/store/postgres"
)

// A relay process: run as many as you like against one database; one is
// active (it holds the advisory lock), the others stand by, and the active
// one is woken by LISTEN/NOTIFY. (Not run: it needs a server;
// TestRelayLeaderFailover does the same against one.)
func ExampleStore_Leader() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	url := os.Getenv("DATABASE_URL")
	db, err := sql.Open("pgx", url)
	if err != nil {
		log.Fatal(err)
	}
	store, err := postgres.New(db, postgres.Config{})
	if err != nil {
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
	relay, err := outbox.NewRelay(outbox.Config{Store: store, Publisher: broker, Leader: leader, Notifier: listener})
	if err != nil {
		log.Fatal(err)
	}
	if err := relay.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
