package postgres

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cqrskit/cqrskit/event"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// idleBlocker is a session that took a transaction id and idles in its
// transaction, as a forgotten BEGIN in a psql window or a pool that
// leaks a transaction does.
type idleBlocker struct {
	tx   *sql.Tx
	pid  int
	txID uint64
}

func openIdleBlocker(t *testing.T, db *sql.DB) *idleBlocker {
	t.Helper()
	tx, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	b := &idleBlocker{tx: tx}
	var xid string
	if _, err := tx.Exec(`SET LOCAL application_name = 'forgotten-psql'`); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(`SELECT pg_backend_pid(), pg_current_xact_id()::text`).Scan(&b.pid, &xid); err != nil {
		t.Fatal(err)
	}
	if b.txID, err = strconv.ParseUint(xid, 10, 64); err != nil {
		t.Fatal(err)
	}
	return b
}

func horizonGauge(t *testing.T, reader *sdkmetric.ManualReader) (float64, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[float64]); ok && m.Name == "cqrskit.postgres.read_horizon.age" && len(g.DataPoints) > 0 {
				return g.DataPoints[0].Value, true
			}
		}
	}
	return 0, false
}

// A transaction idle with an id stalls ReadAll: the events appended after
// it are committed but not returned until it ends. ReadHorizon names the
// backend, the gauge shows its age, a caught-up read logs it, and after a
// rollback the events are read.
func TestIdleTransactionHoldsTheReadHorizon(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	s := newStore(t, Config{
		Logger:           slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		HorizonWarnAfter: time.Nanosecond, // any age: the test needs no clock
		MeterProvider:    mp,
	})
	ctx := context.Background()

	if age, ok := horizonGauge(t, reader); !ok || age != 0 {
		t.Fatalf("gauge before any blocker: %v (reported %v), want 0", age, ok)
	}

	blocker := openIdleBlocker(t, s.DB())
	if _, err := s.Append(ctx, "product-1", event.NoStream, evs(3)); err != nil {
		t.Fatal(err)
	}

	// The stall: committed, not returned.
	got, err := s.ReadAll(ctx, event.Cursor{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("ReadAll returned %d events while an older transaction idles; the gap-safe horizon should hold them back", len(got))
	}

	h, err := s.ReadHorizon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Blockers) == 0 {
		t.Fatalf("ReadHorizon names no blocker: %+v", h)
	}
	b := h.Blockers[0]
	if b.PID != blocker.pid || b.TxID != blocker.txID || h.Horizon != blocker.txID {
		t.Errorf("horizon %d held by %+v, want pid %d tx %d", h.Horizon, b, blocker.pid, blocker.txID)
	}
	if b.State != "idle in transaction" || b.ApplicationName != "forgotten-psql" || b.Started.IsZero() {
		t.Errorf("blocker %+v: want state idle in transaction, application forgotten-psql, a start time", b)
	}
	if h.Age <= 0 || b.Age != h.Age {
		t.Errorf("horizon age %v, blocker age %v: want > 0 and equal", h.Age, b.Age)
	}
	if h.Waiting != 3 {
		t.Errorf("Waiting %d, want the 3 appended events", h.Waiting)
	}
	if h.NextTxID <= h.Horizon {
		t.Errorf("NextTxID %d not above the horizon %d", h.NextTxID, h.Horizon)
	}
	for _, want := range []string{"backend pid " + strconv.Itoa(blocker.pid), "idle in transaction", "pg_terminate_backend(" + strconv.Itoa(blocker.pid) + ")"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("blocker %q lacks %q", b, want)
		}
	}

	log := logs.String()
	if !strings.Contains(log, "level=WARN") || !strings.Contains(log, "pid="+strconv.Itoa(blocker.pid)) || !strings.Contains(log, "events_waiting=3") {
		t.Errorf("a caught-up ReadAll held by an old transaction logged no warning naming it:\n%s", log)
	}
	if age, ok := horizonGauge(t, reader); !ok || age <= 0 {
		t.Errorf("gauge %v (reported %v) while a transaction holds the horizon, want > 0", age, ok)
	}

	if err := blocker.tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if all := readAllEventually(t, s, 3); len(all) != 3 {
		t.Fatalf("after the rollback ReadAll returned %d events, want 3", len(all))
	}
	if h, err := s.ReadHorizon(ctx); err != nil || len(h.Blockers) != 0 || h.Age != 0 || h.Horizon != h.NextTxID {
		t.Errorf("horizon after the rollback: %+v, %v; want no blocker", h, err)
	}
}

// A backend of another database does not hold this database's readers
// (readAllSQL leaves it out), so ReadHorizon does not name it either.
func TestReadHorizonIgnoresOtherDatabases(t *testing.T) {
	t.Parallel()
	a, b := newStore(t, Config{}), newStore(t, Config{})
	blocker := openIdleBlocker(t, b.DB())
	h, err := a.ReadHorizon(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, bl := range h.Blockers {
		if bl.PID == blocker.pid {
			t.Fatalf("ReadHorizon names a backend of another database: %+v", bl)
		}
	}
}

// A negative HorizonWarnAfter turns the warning off.
func TestHorizonWarningDisabled(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	s := newStore(t, Config{Logger: slog.New(slog.NewTextHandler(logs, nil)), HorizonWarnAfter: -1})
	openIdleBlocker(t, s.DB())
	if _, err := s.ReadAll(context.Background(), event.Cursor{}, 10); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("warned with HorizonWarnAfter < 0:\n%s", logs)
	}
}

// This server runs with max_prepared_transactions = 0, so no prepared
// transaction can be made here; the text a prepared blocker is reported
// with is checked on its own.
func TestHorizonBlockerString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		b    HorizonBlocker
		want []string
	}{
		{HorizonBlocker{TxID: 9, PreparedGID: "pay'42", Database: "shop", User: "app", Age: 3 * time.Second},
			[]string{`prepared transaction "pay'42"`, "tx 9", "database shop", "3s", "ROLLBACK PREPARED 'pay''42'"}},
		{HorizonBlocker{TxID: 7}, []string{"transaction 7", "not in pg_stat_activity"}},
		{HorizonBlocker{TxID: 5, PID: 42, State: "idle in transaction", Query: "SELECT 1", Age: time.Minute},
			[]string{"backend pid 42", "state idle in transaction", "1m0s", `"SELECT 1"`, "pg_terminate_backend(42)"}},
	} {
		got := tc.b.String()
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%+v: %q lacks %q", tc.b, got, w)
			}
		}
	}
}
