package projectiontest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/projection"
)

// Harness is what the suite needs from one fresh, empty database.
type Harness struct {
	// Events is the event store under test, migrated and empty. If it is
	// an event.TxStore, writers commit through their own transactions (and
	// call its Committed method after committing; see event.TxStore).
	Events event.Store
	// Checkpoints stores checkpoints in the database the read model is
	// written to; usually the same store as Events.
	Checkpoints projection.CheckpointStore
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// row is the read model's state of one stream: how many events it
// applied, the last version and a hash chain over the event IDs and
// payloads in the order applied.
type row struct {
	N           int64
	LastVersion int64
	Chain       string
}

func chain(prev string, e event.Event) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write(e.ID[:])
	h.Write(e.Data)
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// readModel is a table of rows in the checkpoint store's database.
type readModel struct {
	db    *sql.DB
	table string
}

func newReadModel(t testing.TB, db *sql.DB, table string) *readModel {
	t.Helper()
	if _, err := db.ExecContext(ctxFor(t), `CREATE TABLE IF NOT EXISTS `+table+` (
		stream_id TEXT PRIMARY KEY, n BIGINT NOT NULL, last_version BIGINT NOT NULL, chain TEXT NOT NULL)`); err != nil {
		t.Fatalf("create read model: %v", err)
	}
	return &readModel{db: db, table: table}
}

// apply is a projection.Func. It fails on an event out of stream order, so
// an event applied twice or skipped stops the projection.
func (rm *readModel) apply(ctx context.Context, tx *sql.Tx, e event.Event) error {
	var r row
	err := tx.QueryRowContext(ctx, `SELECT n, last_version, chain FROM `+rm.table+` WHERE stream_id = $1`, e.StreamID).
		Scan(&r.N, &r.LastVersion, &r.Chain)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if e.Version != r.LastVersion+1 {
		return fmt.Errorf("stream %s: event version %d after version %d: applied out of order, twice or with a gap",
			e.StreamID, e.Version, r.LastVersion)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO `+rm.table+` (stream_id, n, last_version, chain) VALUES ($1, 1, $2, $3)
		ON CONFLICT (stream_id) DO UPDATE SET n = `+rm.table+`.n + 1, last_version = $2, chain = $3`,
		e.StreamID, e.Version, chain(r.Chain, e))
	return err
}

func (rm *readModel) reset(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM `+rm.table)
	return err
}

func (rm *readModel) rows(t testing.TB) map[string]row {
	t.Helper()
	rs, err := rm.db.QueryContext(ctxFor(t), `SELECT stream_id, n, last_version, chain FROM `+rm.table)
	if err != nil {
		t.Fatalf("read model: %v", err)
	}
	defer rs.Close()
	out := map[string]row{}
	for rs.Next() {
		var id string
		var r row
		if err := rs.Scan(&id, &r.N, &r.LastVersion, &r.Chain); err != nil {
			t.Fatal(err)
		}
		out[id] = r
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (rm *readModel) total(t testing.TB) int64 {
	var n int64
	for _, r := range rm.rows(t) {
		n += r.N
	}
	return n
}

// replay computes the read model from the whole log: every stream loaded
// in version order.
func replay(t testing.TB, s event.Store) map[string]row {
	t.Helper()
	ctx := ctxFor(t)
	streams := map[string]bool{}
	var cur event.Cursor
	for {
		page, err := s.ReadAll(ctx, cur, 1000)
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			streams[e.StreamID] = true
		}
		cur = page[len(page)-1].Cursor()
	}
	out := map[string]row{}
	for id := range streams {
		var r row
		for e, err := range s.Load(ctx, id, 1) {
			if err != nil {
				t.Fatalf("Load %s: %v", id, err)
			}
			r = row{N: r.N + 1, LastVersion: e.Version, Chain: chain(r.Chain, e)}
		}
		out[id] = r
	}
	return out
}

func diff(got, want map[string]row) string {
	if maps.Equal(got, want) {
		return ""
	}
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out string
	shown := 0
	for _, k := range keys {
		if got[k] != want[k] && shown < 5 {
			out += fmt.Sprintf("\n  %s: got %+v, want %+v", k, got[k], want[k])
			shown++
		}
	}
	return fmt.Sprintf("%d streams in the read model, %d in the log:%s", len(got), len(want), out)
}

func newProjection(t testing.TB, cfg projection.Config) *projection.Projection {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	p, err := projection.New(cfg)
	if err != nil {
		t.Fatalf("projection.New: %v", err)
	}
	return p
}

// appendEvents appends n events to stream in batches of batch.
func appendEvents(t testing.TB, s event.Store, stream string, n, batch int) {
	t.Helper()
	ctx := ctxFor(t)
	for done := 0; done < n; {
		k := min(batch, n-done)
		evs := make([]event.Event, k)
		for i := range evs {
			evs[i] = event.Event{ID: event.NewID(), StreamType: "test", Type: "test.happened",
				Data: fmt.Appendf(nil, `{"i":%d}`, done+i)}
		}
		if _, err := s.Append(ctx, stream, event.Any, evs); err != nil {
			t.Fatalf("append to %s: %v", stream, err)
		}
		done += k
	}
}

// catchUp calls p.CatchUp until it fails or has applied want events in
// all, for up to 30 seconds. A gap-safe reader may briefly see less than
// every committed event (on PostgreSQL, a transaction of another database
// that ends while the horizon is taken still counts as running), so one
// CatchUp can end early without anything being wrong; a test that expects
// an error passes want above the count it expects before it.
func catchUp(ctx context.Context, p *projection.Projection, want int64) (int64, error) {
	var total int64
	for deadline := time.Now().Add(30 * time.Second); ; {
		n, err := p.CatchUp(ctx)
		total += n
		if err != nil || total >= want || time.Now().After(deadline) {
			return total, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
