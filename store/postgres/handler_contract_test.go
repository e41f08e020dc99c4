package postgres

import (
	"testing"

	"github.com/cqrskit/cqrskit/handler/handlertest"
)

func TestHandlerContract(t *testing.T) {
	t.Parallel()
	handlertest.Run(t, func(t testing.TB) handlertest.Harness {
		return handlertest.Harness{Store: newStore(t, Config{})}
	})
}
