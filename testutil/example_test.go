package testutil_test

import (
	"errors"
	"fmt"

	"github.com/cqrskit/cqrskit/es"
	"github.com/cqrskit/cqrskit/internal/exampletb"
	"github.com/cqrskit/cqrskit/testutil"
)

type (
	Opened    struct{ Owner string }
	Deposited struct{ Amount int64 }
	Withdrawn struct{ Amount int64 }
)

var ErrInsufficientFunds = errors.New("insufficient funds")

type Account struct {
	es.Base
	balance int64
}

func (a *Account) Apply(data any) error {
	switch e := data.(type) {
	case Opened:
	case Deposited:
		a.balance += e.Amount
	case Withdrawn:
		a.balance -= e.Amount
	default:
		return fmt.Errorf("account: unexpected %T", data)
	}
	return nil
}

func (a *Account) Withdraw(n int64) error {
	if n > a.balance {
		return fmt.Errorf("withdraw %d: %w", n, ErrInsufficientFunds)
	}
	return es.Raise(a, Withdrawn{Amount: n})
}

// Given past events, when a command, then the new events or an error. In a
// test, pass its *testing.T; here a stand-in prints what a failing scenario
// reports.
func ExampleGiven() {
	t := exampletb.New("ExampleGiven")
	defer t.Done()

	testutil.Given(t, &Account{}, Opened{Owner: "ann"}, Deposited{Amount: 10}).
		When(func(a *Account) error { return a.Withdraw(4) }).
		Then(Withdrawn{Amount: 4})

	testutil.Given(t, &Account{}, Opened{Owner: "ann"}).
		When(func(a *Account) error { return a.Withdraw(4) }).
		ThenError(ErrInsufficientFunds)
	fmt.Println("passed:", !t.Failed())

	// A wrong expectation fails the test with a diff.
	testutil.Given(t, &Account{}, Opened{Owner: "ann"}, Deposited{Amount: 10}).
		When(func(a *Account) error { return a.Withdraw(4) }).
		Then(Withdrawn{Amount: 5})
	fmt.Println("passed:", !t.Failed())
	// Output:
	// passed: true
	// raised events differ (-want +got):
	// -	[0] testutil_test.Withdrawn{Amount:5}
	// +	[0] testutil_test.Withdrawn{Amount:4}
	//  	     Amount: want 5, got 4
	// passed: false
}
