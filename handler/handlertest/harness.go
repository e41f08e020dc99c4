package handlertest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/memory"
)

// Harness is what the suite needs from one fresh, empty database.
type Harness struct {
	// Store is the store under test, migrated, on a database of its own.
	Store handler.Store
}

const topic = "test"

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newEvent returns an event as the store would have stored it: stream,
// version, position and a payload {"n": n}.
func newEvent(stream string, version int64, n int) event.Event {
	return event.Event{
		ID: event.NewID(), StreamID: stream, StreamType: "test", Version: version, Position: version,
		Type: "test.added", SchemaVersion: 1, Data: fmt.Appendf(nil, `{"n":%d}`, n),
		Metadata: event.Metadata{CorrelationID: "corr-" + stream}, RecordedAt: time.Now().UTC(),
	}
}

func message(e event.Event) messagebus.Message { return envelope.Message(e, topic) }

func delivery(e event.Event, attempt int) messagebus.Delivery {
	return messagebus.Delivery{Message: message(e), Attempt: attempt}
}

// readModel counts, per stream, the events applied and the sum of their n,
// in a table of the store's database.
type readModel struct {
	db *sql.DB
}

func newReadModel(t testing.TB, db *sql.DB) *readModel {
	t.Helper()
	if _, err := db.ExecContext(ctxFor(t), `CREATE TABLE IF NOT EXISTS handlertest_counts (
		stream_id TEXT PRIMARY KEY, applied BIGINT NOT NULL, total BIGINT NOT NULL)`); err != nil {
		t.Fatalf("create read model: %v", err)
	}
	return &readModel{db: db}
}

// apply is a handler.Func: it adds e's n to its stream's row.
func (rm *readModel) apply(ctx context.Context, tx *sql.Tx, e event.Event) error {
	var n int
	if _, err := fmt.Sscanf(string(e.Data), `{"n":%d}`, &n); err != nil {
		return fmt.Errorf("payload %q: %w", e.Data, err)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO handlertest_counts (stream_id, applied, total) VALUES ($1, 1, $2)
		ON CONFLICT (stream_id) DO UPDATE SET applied = handlertest_counts.applied + 1, total = handlertest_counts.total + $2`,
		e.StreamID, n)
	return err
}

// applied returns how many events of stream took effect.
func (rm *readModel) applied(t testing.TB, stream string) int {
	t.Helper()
	var n int
	err := rm.db.QueryRowContext(ctxFor(t), `SELECT applied FROM handlertest_counts WHERE stream_id = $1`, stream).Scan(&n)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("read model: %v", err)
	}
	return n
}

func (rm *readModel) total(t testing.TB) int {
	t.Helper()
	var n sql.NullInt64
	if err := rm.db.QueryRowContext(ctxFor(t), `SELECT sum(applied) FROM handlertest_counts`).Scan(&n); err != nil {
		t.Fatalf("read model: %v", err)
	}
	return int(n.Int64)
}

// sleeps records the waits a handler asks for instead of waiting.
type sleeps struct {
	mu sync.Mutex
	ds []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.ds = append(s.ds, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.ds...)
}

// counter counts calls per event ID.
type counter struct {
	mu sync.Mutex
	n  map[uuid.UUID]int
}

func (c *counter) add(id uuid.UUID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[uuid.UUID]int{}
	}
	c.n[id]++
	return c.n[id]
}

func (c *counter) get(id uuid.UUID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[id]
}

// newHandler returns handler.Idempotent(cfg), quiet unless cfg has a
// Logger.
func newHandler(t testing.TB, cfg handler.Config) *handler.Handler {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	h, err := handler.Idempotent(cfg)
	if err != nil {
		t.Fatalf("Idempotent: %v", err)
	}
	return h
}

func deadLetters(t testing.TB, h *handler.Handler) []handler.DeadLetter {
	t.Helper()
	var out []handler.DeadLetter
	for l, err := range h.DeadLetters().All(ctxFor(t)) {
		if err != nil {
			t.Fatalf("dead letters: %v", err)
		}
		out = append(out, l)
	}
	return out
}

func newBroker(t testing.TB, cfg memory.Config) *memory.Broker {
	t.Helper()
	cfg.Logger = quietLogger()
	b, err := memory.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func subscribe(t testing.TB, b messagebus.Subscriber, topic, group string, h messagebus.Handler, opts ...messagebus.SubscribeOption) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := b.Subscribe(ctx, topic, group, h, opts...)
	if err != nil {
		cancel()
		t.Fatalf("subscribe: %v", err)
	}
	t.Cleanup(func() {
		stopCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
		defer stop()
		_ = sub.Stop(stopCtx)
		cancel()
	})
}

func publish(t testing.TB, b messagebus.Publisher, msgs ...messagebus.Message) {
	t.Helper()
	if err := b.Publish(ctxFor(t), msgs...); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// eventually polls cond until it holds or 30 seconds pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// flaky wraps a store so a test can take the database away: while down,
// DB() is a database whose server refuses connections, and the store's
// own calls fail the same way.
type flaky struct {
	handler.Store
	down     atomic.Bool
	markDown atomic.Bool // only MarkProcessed fails
	dlDown   atomic.Bool // only PutDeadLetter fails
	gone     *sql.DB
}

var errRefused = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

type refusingConnector struct{}

func (refusingConnector) Connect(context.Context) (driver.Conn, error) { return nil, errRefused }
func (refusingConnector) Driver() driver.Driver                        { return refusingDriver{} }

type refusingDriver struct{}

func (refusingDriver) Open(string) (driver.Conn, error) { return nil, errRefused }

func newFlaky(t testing.TB, s handler.Store) *flaky {
	gone := sql.OpenDB(refusingConnector{})
	t.Cleanup(func() { _ = gone.Close() })
	return &flaky{Store: s, gone: gone}
}

func (f *flaky) DB() *sql.DB {
	if f.down.Load() {
		return f.gone
	}
	return f.Store.DB()
}

func (f *flaky) MarkProcessed(ctx context.Context, tx *sql.Tx, h string, id uuid.UUID) (bool, error) {
	if f.down.Load() || f.markDown.Load() {
		return false, errRefused
	}
	return f.Store.MarkProcessed(ctx, tx, h, id)
}

// MarkProcessedBatch fails like MarkProcessed, and otherwise uses the
// store's own or emulates it.
func (f *flaky) MarkProcessedBatch(ctx context.Context, tx *sql.Tx, h string, ids []uuid.UUID) ([]bool, error) {
	if f.down.Load() || f.markDown.Load() {
		return nil, errRefused
	}
	if bm, ok := f.Store.(handler.BatchMarker); ok {
		return bm.MarkProcessedBatch(ctx, tx, h, ids)
	}
	fresh := make([]bool, len(ids))
	for i, id := range ids {
		var err error
		if fresh[i], err = f.Store.MarkProcessed(ctx, tx, h, id); err != nil {
			return nil, err
		}
	}
	return fresh, nil
}

func (f *flaky) PutDeadLetter(ctx context.Context, d handler.DeadLetter) error {
	if f.down.Load() || f.dlDown.Load() {
		return errRefused
	}
	return f.Store.PutDeadLetter(ctx, d)
}
