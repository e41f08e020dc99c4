package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/internal/exampletb"
	"github.com/cqrskit/cqrskit/store/postgres"
	"github.com/cqrskit/cqrskit/testutil/pgtest"
)

// New checks the configuration without touching the database; every
// problem is reported at once.
func ExampleNew() {
	// sql.Open does not connect.
	db, err := sql.Open("pgx", "postgres://app@db.example:5432/app")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	_, err = postgres.New(db, postgres.Config{Schema: "Events", TablePrefix: "my-app_"})
	fmt.Println(err)

	store, err := postgres.New(db, postgres.Config{Schema: "cqrs"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(store.Table("events"), store.Table("outbox"), store.NotifyChannel())
	// Output:
	// postgres config: Schema "Events": must match ^[a-z_][a-z0-9_]{0,40}$ (lower-case letters, digits and underscores, at most 41 characters, not starting with a digit)
	// postgres config: TablePrefix "my-app_": must match ^[a-z_][a-z0-9_]{0,40}$ (lower-case letters, digits and underscores, at most 41 characters, not starting with a digit)
	// cqrs.cqrs_events cqrs.cqrs_outbox cqrs.cqrs_outbox
}

// MigrationSQL prints the schema for users who run their own migration
// tool; here, the tables it creates.
func ExampleMigrationSQL() {
	ddl, err := postgres.MigrationSQL(postgres.Config{Schema: "cqrs"})
	if err != nil {
		log.Fatal(err)
	}
	for line := range strings.Lines(ddl) {
		if strings.HasPrefix(line, "CREATE TABLE") {
			fmt.Print(line)
		}
	}
	// Output:
	// CREATE TABLE IF NOT EXISTS cqrs.cqrs_streams (
	// CREATE TABLE IF NOT EXISTS cqrs.cqrs_events (
	// CREATE TABLE IF NOT EXISTS cqrs.cqrs_outbox (
	// CREATE TABLE IF NOT EXISTS cqrs.cqrs_snapshots (
	// CREATE TABLE IF NOT EXISTS cqrs.cqrs_processed (
	// CREATE TABLE IF NOT EXISTS cqrs.cqrs_dead_letters (
	// CREATE TABLE IF NOT EXISTS cqrs.cqrs_checkpoints (
	// CREATE TABLE IF NOT EXISTS cqrs.cqrs_relay_leases (
	// CREATE TABLE IF NOT EXISTS cqrs.cqrs_outbox_parked (
}

// AppendTx commits the events, their outbox rows and the application's own
// write together. TestAppendTxCommitsAndRollsBackWithTheCallersWrites
// checks the rollback too.
func ExampleStore_AppendTx() {
	// A database of the example's own; a service opens its DATABASE_URL.
	t := exampletb.New("ExampleStore_AppendTx")
	defer t.Done()
	url := pgtest.New(t).URL

	ctx := context.Background()
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
	// The application's own table, beside the store's.
	if _, err := db.ExecContext(ctx, `CREATE TABLE product_names (id text PRIMARY KEY, name text NOT NULL)`); err != nil {
		log.Fatal(err)
	}

	tx, err := store.DB().BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	created := event.Event{StreamType: "product", Type: "product.created", Data: []byte(`{"name":"Widget"}`)}
	res, err := store.AppendTx(ctx, tx, "product-42", event.NoStream, []event.Event{created})
	if err != nil {
		log.Fatal(err) // errors.Is(err, event.ErrConcurrencyConflict) when product-42 exists
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO product_names (id, name) VALUES ($1, $2)`, "product-42", "Widget"); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("product-42 at version", res.Version)
	// Output:
	// product-42 at version 1
}
