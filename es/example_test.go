package es_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/store/memory"
)

// The events of a bank account: plain structs, registered under stable
// names.
type (
	AccountOpened struct{ Owner string }
	Deposited     struct{ Amount int64 }
	Withdrawn     struct{ Amount int64 }
)

var ErrInsufficientFunds = errors.New("insufficient funds")

// Account is the aggregate. Its exported fields are its snapshot.
type Account struct {
	es.Base
	Owner   string
	Balance int64

	applied int // events applied since construction, for tests; not snapshotted
}

// Open, Deposit and Withdraw are commands: check the rules, then raise.
func (a *Account) Open(id, owner string) error {
	if a.Version() > 0 || len(a.Uncommitted()) > 0 {
		return errors.New("account already opened")
	}
	a.SetID(id)
	return es.Raise(a, AccountOpened{Owner: owner})
}

func (a *Account) Deposit(amount int64) error {
	if amount <= 0 {
		return fmt.Errorf("deposit %d: amount must be positive", amount)
	}
	return es.Raise(a, Deposited{Amount: amount})
}

func (a *Account) Withdraw(amount int64) error {
	if amount > a.Balance {
		return fmt.Errorf("withdraw %d from %d: %w", amount, a.Balance, ErrInsufficientFunds)
	}
	return es.Raise(a, Withdrawn{Amount: amount})
}

// Apply changes state and nothing else.
func (a *Account) Apply(data any) error {
	switch e := data.(type) {
	case AccountOpened:
		a.Owner = e.Owner
	case Deposited:
		a.Balance += e.Amount
	case Withdrawn:
		a.Balance -= e.Amount
	default:
		return fmt.Errorf("account: unexpected event %T", data)
	}
	a.applied++
	return nil
}

func newRegistry() *event.Registry {
	reg := event.NewRegistry(nil)
	event.MustRegister[AccountOpened](reg, "account.opened")
	event.MustRegister[Deposited](reg, "account.deposited")
	event.MustRegister[Withdrawn](reg, "account.withdrawn")
	return reg
}

func Example() {
	ctx := context.Background()
	store := memory.New()
	accounts, err := es.NewRepository(store, newRegistry(), es.RepositoryConfig[*Account]{
		New:        func() *Account { return &Account{} },
		StreamType: "account",
		Snapshots:  store,
	})
	if err != nil {
		panic(err)
	}

	// A new aggregate: commands, then Save.
	acct := &Account{}
	_ = acct.Open("42", "alice")
	_ = acct.Deposit(100)
	if err := accounts.Save(ctx, acct); err != nil {
		panic(err)
	}
	fmt.Println("saved at version", acct.Version())

	// An existing one: Update loads, runs the command, saves, and retries
	// on a concurrency conflict.
	acct, err = accounts.Update(ctx, "42", func(a *Account) error { return a.Withdraw(30) })
	if err != nil {
		panic(err)
	}
	fmt.Println("after withdrawal:", acct.Balance, "at version", acct.Version())

	// A command that breaks a rule records nothing.
	_, err = accounts.Update(ctx, "42", func(a *Account) error { return a.Withdraw(500) })
	fmt.Println(errors.Is(err, ErrInsufficientFunds))

	loaded, err := accounts.Load(ctx, "42")
	if err != nil {
		panic(err)
	}
	fmt.Println(loaded.ID(), loaded.Owner, loaded.Balance, loaded.Version())
	// Output:
	// saved at version 2
	// after withdrawal: 70 at version 3
	// true
	// 42 alice 70 3
}

func ExampleRepository_LoadAt() {
	ctx := context.Background()
	accounts, _ := es.NewRepository(memory.New(), newRegistry(), es.RepositoryConfig[*Account]{
		New:        func() *Account { return &Account{} },
		StreamType: "account",
	})
	acct := &Account{}
	_ = acct.Open("7", "bob")
	_ = acct.Deposit(10)
	_ = acct.Deposit(20)
	_ = accounts.Save(ctx, acct)

	past, _ := accounts.LoadAt(ctx, "7", 2)
	fmt.Println(past.Balance, past.Version())

	_, err := accounts.LoadAt(ctx, "7", 9)
	fmt.Println(errors.Is(err, es.ErrVersionNotFound))
	// Output:
	// 10 2
	// true
}

func ExampleWithMetadata() {
	ctx := context.Background()
	store := memory.New()
	accounts, _ := es.NewRepository(store, newRegistry(), es.RepositoryConfig[*Account]{
		New:        func() *Account { return &Account{} },
		StreamType: "account",
	})

	// Typically set by middleware from the incoming request.
	ctx = es.WithMetadata(ctx, event.Metadata{CorrelationID: "req-1", CausationID: "cmd-9"})
	acct := &Account{}
	_ = acct.Open("1", "carol")
	_ = accounts.Save(ctx, acct)

	for e, err := range store.Load(ctx, accounts.Stream("1"), 1) {
		if err != nil {
			panic(err)
		}
		fmt.Println(e.StreamID, e.Type, e.Metadata.CorrelationID, e.Metadata.CausationID)
	}
	// Output:
	// account-1 account.opened req-1 cmd-9
}
