package infra_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cqrskit/cqrskit/sample/app"
	"github.com/cqrskit/cqrskit/sample/infra"
	"github.com/cqrskit/cqrskit/sample/infra/httpapi"
	"github.com/cqrskit/cqrskit/testutil/natstest"
)

// The split-role tests run the API, the relay and the worker as three
// services sharing a database and a broker, as docker-compose.yml does,
// and stop each part in turn while the others go on: the outbox and the
// broker hold the backlog, and nothing is lost.

func TestRolesPostgres(t *testing.T) {
	t.Parallel()
	testRoles(t, postgresNATS(t))
}

// TestRolesSQLite shares one SQLite file between the three parts (as
// processes on one machine would) with a NATS server for the broker.
func TestRolesSQLite(t *testing.T) {
	t.Parallel()
	cfg := embedded(t)
	cfg.NATSURL = natstest.URL(t)
	testRoles(t, cfg)
}

func testRoles(t *testing.T, cfg infra.Config) {
	role := func(r infra.Role) infra.Config {
		c := cfg
		c.Role = r
		c.ReadYourWritesTimeout = time.Second
		return c
	}
	api := start(t, role(infra.RoleAPI))
	relay := start(t, role(infra.RoleRelay))
	worker := start(t, role(infra.RoleWorker))

	for _, s := range []*service{api, relay, worker} {
		s.do(t, "GET", "/healthz", nil).want(t, http.StatusOK)
		s.do(t, "GET", "/readyz", nil).want(t, http.StatusOK)
	}
	// Only the API serves the API.
	wantError(t, worker.do(t, "GET", "/products", nil), http.StatusNotFound, "")

	id := api.create(t, "Lamp", 1000, 0)
	api.product(t, id, 1)
	adjust := func(n int) {
		for range n {
			api.command(t, id, "stock", map[string]any{"delta": 1})
		}
	}

	// Relay down: commands still succeed, their events wait in the outbox.
	relay.down()
	adjust(10)
	time.Sleep(100 * time.Millisecond)
	var v app.ProductView
	api.do(t, "GET", "/products/"+id, nil).want(t, http.StatusOK).decode(t, &v)
	if v.Version != 1 {
		t.Fatalf("with the relay down the read model moved to version %d", v.Version)
	}
	// Waiting for one's own write times out, and says so.
	r := api.do(t, "GET", "/products/"+id+"?min_version=2", nil)
	wantError(t, r, http.StatusServiceUnavailable, "min_version")
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}

	// Worker down, relay up: the backlog moves to the broker and waits
	// there.
	worker.down()
	relay.up()
	adjust(10)

	// Worker up: it catches up with everything.
	worker.up()
	if got := api.product(t, id, 21); got.Stock != 20 || got.Version != 21 {
		t.Fatalf("after the backlog: %+v, want stock 20 at version 21", got)
	}
	// The stats projection (in the worker) caught up too.
	eventually(t, 20*time.Second, func() string {
		var st app.StatsView
		api.do(t, "GET", "/stats", nil).want(t, http.StatusOK).decode(t, &st)
		if st.TotalStock != 20 || st.TotalStockValueCents != "20000" {
			return fmt.Sprintf("stats %+v", st)
		}
		return ""
	})
}

// TestKafka runs the embedded store with Kafka as the broker (an
// in-process kfake cluster).
func TestKafka(t *testing.T) {
	t.Parallel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	cfg := embedded(t)
	cfg.KafkaBrokers = cluster.ListenAddrs()
	s := start(t, cfg)

	id := s.create(t, "Kite", 1500, 6)
	s.command(t, id, "stock", map[string]any{"delta": -2})
	if got := s.product(t, id, 2); got.Stock != 4 {
		t.Fatalf("over Kafka: %+v", got)
	}
	eventually(t, 20*time.Second, func() string {
		var al httpapi.AlertList
		s.do(t, "GET", "/alerts", nil).want(t, http.StatusOK).decode(t, &al)
		if len(al.Alerts) != 1 || al.Alerts[0].ProductID != id {
			return fmt.Sprintf("alerts %+v", al)
		}
		return ""
	})
}
