package infra

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/sample/domain"
)

// EnvChaosPoison is the fault-injection hook of the fault suite
// (cmd/cqrschaos). When this environment variable is set in a process that
// runs the consumers, the products read model rejects, permanently, the
// creation of a product named exactly its value: that event is a poison
// event, which the idempotent handler sends straight to the dead letters.
// Unset, the default, nothing changes. Never set it in production.
const EnvChaosPoison = "CQRSKIT_CHAOS_POISON"

// withPoison returns fn, rejecting the creation of a product called name
// with a permanent error; an empty name returns fn unchanged.
func withPoison(reg *event.Registry, name string, fn handler.Func) handler.Func {
	if name == "" {
		return fn
	}
	return func(ctx context.Context, tx *sql.Tx, e event.Event) error {
		if e.Type == domain.TypeCreated {
			if data, err := reg.Decode(e); err == nil {
				if c, ok := data.(domain.Created); ok && c.Name == name {
					return handler.Permanent(fmt.Errorf("product %q is a poison event (%s)", name, EnvChaosPoison))
				}
			}
		}
		return fn(ctx, tx, e)
	}
}
