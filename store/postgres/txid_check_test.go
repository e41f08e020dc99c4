package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/event"
)

// restoreFromBusierCluster rewrites the stored transaction ids as a dump
// from another, busier cluster would carry them: far above this
// cluster's counter (in a later epoch), in the same order, with gaps.
func restoreFromBusierCluster(t *testing.T, s *Store) {
	t.Helper()
	const foreign = `((%s::text::bigint * 1000 + 10000000000)::text)`
	for _, q := range []string{
		`UPDATE {events} SET tx_id = ` + strings.ReplaceAll(foreign, "%s", "tx_id") + `::xid8`,
		`UPDATE {streams} SET last_tx_id = ` + strings.ReplaceAll(foreign, "%s", "last_tx_id") + `::xid8`,
		`UPDATE {checkpoints} SET tx_id = ` + strings.ReplaceAll(foreign, "%s", "tx_id") + `::bigint WHERE tx_id > 0`,
	} {
		if _, err := s.DB().Exec(s.adminSQL(q)); err != nil {
			t.Fatal(err)
		}
	}
}

func ids(es []event.Event) []uuid.UUID {
	out := make([]uuid.UUID, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// stored returns the stored events' cursors in log order, read past the
// horizon (restored ids are above it).
func stored(t *testing.T, s *Store) []event.Event {
	t.Helper()
	rows, err := s.DB().Query(s.adminSQL(`SELECT id, stream_id, (tx_id::text)::bigint, position FROM {events} ORDER BY tx_id, position`))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []event.Event
	for rows.Next() {
		var e event.Event
		var tx int64
		if err := rows.Scan(&e.ID, &e.StreamID, &tx, &e.Position); err != nil {
			t.Fatal(err)
		}
		e.TxID = uint64(tx)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func readFrom(t *testing.T, s *Store, c event.Cursor) []uuid.UUID {
	t.Helper()
	got, err := s.ReadAll(context.Background(), c, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return ids(got)
}

func equalIDs(a, b []uuid.UUID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func saveCheckpointSQL(t *testing.T, s *Store, name string, txID uint64, pos int64) {
	t.Helper()
	if _, err := s.DB().Exec(s.adminSQL(`INSERT INTO {checkpoints} (name, tx_id, position) VALUES ($1, $2, $3)`), name, int64(txID), pos); err != nil {
		t.Fatal(err)
	}
}

func checkpointOf(t *testing.T, s *Store, name string) event.Cursor {
	t.Helper()
	var c event.Cursor
	var tx int64
	if err := s.DB().QueryRow(s.adminSQL(`SELECT tx_id, position FROM {checkpoints} WHERE name = $1`), name).Scan(&tx, &c.Position); err != nil {
		t.Fatal(err)
	}
	c.TxID = uint64(tx)
	return c
}

// The bug itself (watermill #576): after a restore into a cluster whose
// counter is lower, the restored events are above the read horizon (a
// new reader sees none of them), and a new event gets a lower id than
// them, so a reader whose checkpoint was restored never sees it.
func TestRestoredTxIDsHideEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, Config{})
	if _, err := s.Append(ctx, "product-1", event.NoStream, evs(2)); err != nil {
		t.Fatal(err)
	}
	readAllEventually(t, s, 2)
	restoreFromBusierCluster(t, s)
	old := stored(t, s)
	if got := readFrom(t, s, event.Cursor{}); len(got) != 0 {
		t.Fatalf("a new reader read %d restored events; they should be above the horizon", len(got))
	}
	if _, err := s.Append(ctx, "product-2", event.NoStream, evs(1)); err != nil {
		t.Fatal(err)
	}
	if all := readAllEventually(t, s, 1); len(all) != 1 || all[0].StreamID != "product-2" {
		t.Fatalf("a new reader should read only the new event, before the restored ones: %v", all)
	}
	if after := readFrom(t, s, old[1].Cursor()); len(after) != 0 {
		t.Fatalf("a reader restored past the old events read %d new ones; the skip this test documents is gone", len(after))
	}
	if err := s.CheckTxIDs(ctx); !errors.Is(err, ErrTxIDsAhead) {
		t.Fatalf("CheckTxIDs: %v, want ErrTxIDsAhead", err)
	}
}

// Migrate refuses a restored database with ErrTxIDsAhead; RebaseTxIDs
// renumbers the ids keeping the log's order and every checkpoint's place,
// and events appended afterwards are read after the old ones, by a
// reader starting from a checkpoint too.
func TestRebaseTxIDsAfterRestore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, Config{})
	for _, a := range []struct {
		stream string
		n      int
	}{{"a", 1}, {"b", 1}, {"a", 2}, {"b", 1}, {"c", 1}} {
		if _, err := s.Append(ctx, a.stream, event.Any, evs(a.n)); err != nil {
			t.Fatal(err)
		}
	}
	before := readAllEventually(t, s, 6)
	if len(before) != 6 {
		t.Fatalf("read %d events, want 6", len(before))
	}
	restoreFromBusierCluster(t, s)
	old := stored(t, s)
	if !equalIDs(ids(old), ids(before)) {
		t.Fatal("the simulated restore changed the order")
	}
	// before: a1 | b1 | a2 a3 | b2 | c1, one transaction each.
	saveCheckpointSQL(t, s, "exact", old[2].TxID, old[2].Position) // after a2
	saveCheckpointSQL(t, s, "gap", old[4].TxID-1, 0)               // below b2's id: after a3
	saveCheckpointSQL(t, s, "low", 5, 7)                           // below every id: from the start
	saveCheckpointSQL(t, s, "zero", 0, 0)

	// A service starting on the restored database.
	s2, err := New(s.DB(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	err = s2.Migrate(ctx)
	var ahead *TxIDsAheadError
	if !errors.Is(err, ErrTxIDsAhead) || !errors.As(err, &ahead) {
		t.Fatalf("Migrate on a restored database: %v, want ErrTxIDsAhead", err)
	}
	if ahead.Table != s.Table("events") || ahead.MaxStored != old[5].TxID || ahead.Next >= ahead.MaxStored {
		t.Errorf("detail %+v: want table %s, max %d above next", ahead, s.Table("events"), old[5].TxID)
	}
	for _, want := range []string{"restored from another cluster", "cqrskit migrate rebase-txids", "skip"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	res, err := s2.RebaseTxIDs(ctx, RebaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Rebased || res.Transactions != 5 || res.Events != 6 || res.Streams != 3 || res.Checkpoints != 3 || res.Advanced != 0 {
		t.Errorf("rebase result %+v: want 5 transactions, 6 events, 3 streams, 3 checkpoints", res)
	}
	if err := s2.Migrate(ctx); err != nil {
		t.Fatalf("Migrate after the rebase: %v", err)
	}
	if again, err := s2.RebaseTxIDs(ctx, RebaseOptions{}); err != nil || again.Rebased {
		t.Errorf("a second rebase: %+v, %v; want nothing to do", again, err)
	}

	rebased := readAllEventually(t, s2, 6)
	if !equalIDs(ids(rebased), ids(before)) {
		t.Fatal("the rebase changed the order of the log")
	}
	want := map[string][]uuid.UUID{
		"exact": ids(before[3:]), "gap": ids(before[4:]), "low": ids(before), "zero": ids(before),
	}
	for name, w := range want {
		if got := readFrom(t, s2, checkpointOf(t, s2, name)); !equalIDs(got, w) {
			t.Errorf("checkpoint %s reads %d events after the rebase, want %d (%v vs %v)", name, len(got), len(w), got, w)
		}
	}

	// New appends, to an old stream and a new one, come after the old
	// events, for a reader at the end of the old log and one at a
	// checkpoint.
	if _, err := s2.Append(ctx, "a", event.Exactly(3), evs(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Append(ctx, "d", event.NoStream, evs(1)); err != nil {
		t.Fatal(err)
	}
	all := readAllEventually(t, s2, 8)
	if len(all) != 8 || !equalIDs(ids(all[:6]), ids(before)) || all[6].StreamID != "a" || all[7].StreamID != "d" {
		t.Fatalf("after the rebase the log reads %v; want the 6 old events, then a and d", all)
	}
	if got := readFrom(t, s2, rebased[5].Cursor()); len(got) != 2 {
		t.Errorf("a reader at the end of the old log reads %d new events, want 2", len(got))
	}
	if got := readFrom(t, s2, checkpointOf(t, s2, "exact")); len(got) != 5 {
		t.Errorf("checkpoint exact reads %d events, want 3 old and 2 new", len(got))
	}
}

// With more distinct stored ids than the counter has below it, the
// rebase says how far to advance the counter, and does it when allowed.
func TestRebaseTxIDsAdvancesTheCounter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, Config{})
	// One foreign transaction per row, more than this cluster has used,
	// with room for the transactions of tests running meanwhile.
	if _, err := s.DB().Exec(s.adminSQL(`INSERT INTO {events} (tx_id, id, stream_id, version, type, data)
		SELECT ((10000000000 + i)::text)::xid8, gen_random_uuid(), 'p-' || i, 1, 't', '\x00'
		FROM generate_series(1, (pg_snapshot_xmax(pg_current_snapshot())::text::bigint) + 20000) AS i`)); err != nil {
		t.Fatal(err)
	}
	n := countRows(t, s, "events")

	_, err := s.RebaseTxIDs(ctx, RebaseOptions{})
	if !errors.Is(err, ErrTxIDHeadroom) || !strings.Contains(err.Error(), "--advance") {
		t.Fatalf("rebase without headroom: %v, want ErrTxIDHeadroom naming --advance", err)
	}
	res, err := s.RebaseTxIDs(ctx, RebaseOptions{Advance: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Rebased || res.Advanced < 500 || res.Events != int64(n) {
		t.Errorf("rebase %+v: want rebased after advancing >= 500 ids, %d events", res, n)
	}
	if err := s.CheckTxIDs(ctx); err != nil {
		t.Fatal(err)
	}
	all := readAllEventually(t, s, n)
	if len(all) != n {
		t.Fatalf("read %d events after the rebase, want %d", len(all), n)
	}
	for i, e := range all {
		if want := "p-" + strconv.Itoa(i+1); e.StreamID != want {
			t.Fatalf("event %d is of stream %s, want %s: the rebase changed the order", i, e.StreamID, want)
		}
	}
}
