// Command poisoned is the sample (github.com/cqrskit/cqrskit/sample) with
// the fault hook of cqrschaos: when the environment variable
// CQRSKIT_CHAOS_POISON is set in a process that runs the consumers, the
// products read model rejects, permanently, the creation of a product
// named exactly its value. That event is a poison event, which the
// idempotent handler sends straight to the dead letters. Unset, it is the
// sample. cqrschaos builds and runs it in place of the sample.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/sample/domain"
	"github.com/cqrskit/cqrskit/sample/infra"
)

// envPoison names the product whose creation is a poison event.
const envPoison = "CQRSKIT_CHAOS_POISON"

func main() {
	name := os.Getenv(envPoison)
	err := infra.Main(os.Args[1:], os.Getenv, func(c *infra.Config) {
		if name != "" {
			c.DecorateProducts = func(fn handler.Func) handler.Func { return withPoison(domain.NewRegistry(), name, fn) }
		}
	})
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "sample:", err)
		os.Exit(1)
	}
}

// withPoison returns fn, rejecting the creation of a product called name
// with a permanent error.
func withPoison(reg *event.Registry, name string, fn handler.Func) handler.Func {
	return func(ctx context.Context, tx *sql.Tx, e event.Event) error {
		if e.Type == domain.TypeCreated {
			if data, err := reg.Decode(e); err == nil {
				if c, ok := data.(domain.Created); ok && c.Name == name {
					return handler.Permanent(fmt.Errorf("product %q is a poison event (%s)", name, envPoison))
				}
			}
		}
		return fn(ctx, tx, e)
	}
}
