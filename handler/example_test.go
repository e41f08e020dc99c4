package handler_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// openStore opens a migrated SQLite store in a temporary directory with a
// read-model table; cleanup removes it.
func openStore() (store *sqlite.Store, cleanup func()) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "cqrskit-handler-example")
	if err != nil {
		log.Fatal(err)
	}
	store, err = sqlite.Open(ctx, filepath.Join(dir, "app.db"), sqlite.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := store.DB().ExecContext(ctx, `CREATE TABLE product_names (id TEXT PRIMARY KEY, name TEXT NOT NULL)`); err != nil {
		log.Fatal(err)
	}
	return store, func() {
		store.Close()
		os.RemoveAll(dir)
	}
}

type productRenamed struct {
	Name string `json:"name"`
}

// renamed is a delivery as a relay publishes it (envelope.Message).
func renamed(stream, name string) messagebus.Delivery {
	e := event.Event{ID: event.NewID(), StreamID: stream, StreamType: "product", Version: 2, Type: "product.renamed",
		SchemaVersion: 1, Data: fmt.Appendf(nil, `{"name":%q}`, name)}
	return messagebus.Delivery{Message: envelope.Message(e, "product"), Attempt: 1}
}

func printNames(db *sql.DB) {
	rows, err := db.Query(`SELECT id, name FROM product_names ORDER BY id`)
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			log.Fatal(err)
		}
		fmt.Println(id, name)
	}
}

// The same message delivered three times takes effect once.
func Example() {
	ctx := context.Background()
	store, cleanup := openStore()
	defer cleanup()

	reg := event.NewRegistry(nil)
	event.MustRegister[productRenamed](reg, "product.renamed")
	calls := 0
	fn, err := handler.For(reg, func(ctx context.Context, tx *sql.Tx, e event.Event, r productRenamed) error {
		calls++
		_, err := tx.ExecContext(ctx, `INSERT INTO product_names (id, name) VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name`, e.StreamID, r.Name)
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	h, err := handler.Idempotent(handler.Config{Name: "product-names", Store: store, Func: fn})
	if err != nil {
		log.Fatal(err)
	}
	// Usually: bus.Subscribe(ctx, "product", "product-names", h.Handle).
	d := renamed("product-42", "fountain pen")
	for range 3 {
		if err := h.Handle(ctx, d); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("handler ran", calls, "time(s)")
	printNames(store.DB())
	// Output:
	// handler ran 1 time(s)
	// product-42 fountain pen
}

// A message that keeps failing ends in the dead letters; once the cause is
// fixed, Replay applies it.
func ExampleDeadLetters_Replay() {
	ctx := context.Background()
	store, cleanup := openStore()
	defer cleanup()

	fixed := false
	h, err := handler.Idempotent(handler.Config{
		Name: "product-names", Store: store,
		RetryPolicy: handler.RetryPolicy{MaxAttempts: 3}, Logger: slog.New(slog.DiscardHandler),
		Func: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			if !fixed {
				return errors.New("name service unavailable")
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO product_names (id, name) VALUES ($1, 'pen')`, e.StreamID)
			return err
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := h.Handle(ctx, renamed("product-7", "pen")); err != nil {
		log.Fatal(err) // nil: dead-lettered and acknowledged
	}
	letters, err := h.DeadLetters().List(ctx, 0, 10)
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range letters {
		fmt.Printf("dead letter: %d attempts: %s\n", l.Attempts, l.Error)
	}

	fixed = true
	if err := h.DeadLetters().Replay(ctx, letters[0].ID); err != nil {
		log.Fatal(err)
	}
	printNames(store.DB())
	letters, _ = h.DeadLetters().List(ctx, 0, 10)
	fmt.Println("dead letters left:", len(letters))
	// Output:
	// dead letter: 3 attempts: name service unavailable
	// product-7 pen
	// dead letters left: 0
}

// HandleBatch commits many deliveries in one transaction; a bad one is
// handled on its own and does not roll back the others.
func ExampleHandler_HandleBatch() {
	ctx := context.Background()
	store, cleanup := openStore()
	defer cleanup()

	h, err := handler.Idempotent(handler.Config{
		Name: "product-names", Store: store, Logger: slog.New(slog.DiscardHandler),
		Func: func(ctx context.Context, tx *sql.Tx, e event.Event) error {
			if e.StreamID == "product-3" {
				return handler.Permanent(errors.New("product 3 is not for sale"))
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO product_names (id, name) VALUES ($1, 'pen')`, e.StreamID)
			return err
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	var batch []messagebus.Delivery
	for i := range 5 {
		batch = append(batch, renamed(fmt.Sprint("product-", i), "pen"))
	}
	for i, err := range h.HandleBatch(ctx, batch) {
		fmt.Println("delivery", i, "acknowledged:", err == nil)
	}
	printNames(store.DB())
	letters, _ := h.DeadLetters().List(ctx, 0, 10)
	fmt.Println("dead letters:", len(letters))
	// Output:
	// delivery 0 acknowledged: true
	// delivery 1 acknowledged: true
	// delivery 2 acknowledged: true
	// delivery 3 acknowledged: true
	// delivery 4 acknowledged: true
	// product-0 pen
	// product-1 pen
	// product-2 pen
	// product-4 pen
	// dead letters: 1
}
