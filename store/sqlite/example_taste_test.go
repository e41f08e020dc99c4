package sqlite_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store/sqlite"
)

// The README's "A taste", kept runnable: README.md shows this file from
// the type Deposited to the end.

type Deposited struct{ Amount int64 }

type Account struct {
	es.Base
	Balance int64
}

func (a *Account) Deposit(n int64) error {
	if n <= 0 {
		return fmt.Errorf("deposit %d: amount must be positive", n)
	}
	return es.Raise(a, Deposited{Amount: n})
}

func (a *Account) Apply(data any) error {
	switch e := data.(type) {
	case Deposited:
		a.Balance += e.Amount
	default:
		return fmt.Errorf("account: unexpected event %T", data)
	}
	return nil
}

func Example_taste() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "cqrskit-taste")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	reg := event.NewRegistry(nil)
	event.MustRegister[Deposited](reg, "account.deposited")
	store, err := sqlite.Open(ctx, filepath.Join(dir, "app.db"), sqlite.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	accounts, err := es.NewRepository(store, reg, es.RepositoryConfig[*Account]{
		New:        func() *Account { return &Account{} },
		StreamType: "account",
	})
	if err != nil {
		log.Fatal(err)
	}

	// Create starts the stream; Update loads it, runs the command and
	// appends its events.
	if _, err := accounts.Create(ctx, "42", func(a *Account) error { return a.Deposit(10) }); err != nil {
		log.Fatal(err)
	}
	acc, err := accounts.Update(ctx, "42", func(a *Account) error { return a.Deposit(5) })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("balance", acc.Balance, "at version", acc.Version())
	// Output: balance 15 at version 2
}
