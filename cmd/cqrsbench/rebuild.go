package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/projection"
)

// rebuildPage is the raw loop's page and transaction size: the
// projection's default batch.
const rebuildPage = 500

// rebuildScenario: projection.Rebuild over the whole log into a read model
// with one row per stream, upserted per event, showing its progress bar,
// beside a database/sql loop reading the same events by position and
// applying the same upserts, a page per transaction with a checkpoint
// update. The loop reading alone is reported too.
type rebuildScenario struct{}

func (rebuildScenario) Name() string { return "rebuild" }

func (rebuildScenario) Run(ctx context.Context, e *env) (_ []row, err error) {
	n := e.sizes.RebuildEvents
	b, err := e.openBackend(ctx, "rebuild", 4)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, b.close()) }()
	if err := fill(ctx, e, b, "rebuild", streamType, "bench", n, 1000, func(i int) []byte { return fmt.Appendf(nil, `{"i":%d}`, i) }); err != nil {
		return nil, err
	}
	for _, ddl := range []string{
		`CREATE TABLE bench_rebuild (stream_id TEXT PRIMARY KEY, n BIGINT NOT NULL, last_version BIGINT NOT NULL)`,
		`CREATE TABLE bench_rebuild_batched (stream_id TEXT PRIMARY KEY, n BIGINT NOT NULL, last_version BIGINT NOT NULL)`,
		`CREATE TABLE bench_rebuild_raw (stream_id TEXT PRIMARY KEY, n BIGINT NOT NULL, last_version BIGINT NOT NULL)`,
		`CREATE TABLE bench_checkpoint (name TEXT PRIMARY KEY, position BIGINT NOT NULL)`,
		`INSERT INTO bench_checkpoint (name, position) VALUES ('raw', 0)`,
	} {
		if _, err := b.db.ExecContext(ctx, ddl); err != nil {
			return nil, err
		}
	}

	// The framework, with its progress bar.
	p, err := projection.New(projection.Config{Name: "cqrsbench", Events: b.store, Checkpoints: b.store, Logger: e.log,
		Apply: func(ctx context.Context, tx *sql.Tx, ev event.Event) error {
			return upsertRebuild(ctx, tx, "bench_rebuild", ev.StreamID, ev.Version)
		}})
	if err != nil {
		return nil, err
	}
	reset := func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM bench_rebuild`)
		return err
	}
	bar := newProgress(e.stderr, fmt.Sprintf("rebuild %d events", n), int64(n))
	var last projection.Progress
	fwRate, err := timeIt(n, func() error {
		return p.Rebuild(ctx, reset, func(pr projection.Progress) {
			last = pr
			bar.update(pr.Done, pr.Total)
		})
	})
	bar.finish()
	if err != nil {
		return nil, fmt.Errorf("projection rebuild: %w", err)
	}
	if last.Done != int64(n) {
		return nil, fmt.Errorf("projection rebuild applied %d events, want %d", last.Done, n)
	}

	// The framework again with a set-based ApplyBatch: one multi-row
	// upsert per batch, the way to rebuild fast over a network database.
	pb, err := projection.New(projection.Config{Name: "cqrsbench-batched", Events: b.store, Checkpoints: b.store, Logger: e.log,
		ApplyBatch: func(ctx context.Context, tx *sql.Tx, evs []event.Event) error {
			page := make([]rawEvent, len(evs))
			for i, ev := range evs {
				page[i] = rawEvent{stream: ev.StreamID, version: ev.Version}
			}
			return upsertPageInto(ctx, tx, b, "bench_rebuild_batched", page)
		}})
	if err != nil {
		return nil, err
	}
	resetBatched := func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM bench_rebuild_batched`)
		return err
	}
	batchedRate, err := timeIt(n, func() error { return pb.Rebuild(ctx, resetBatched, nil) })
	if err != nil {
		return nil, fmt.Errorf("projection rebuild with ApplyBatch: %w", err)
	}
	var gotBatched sql.NullInt64
	if err := b.db.QueryRowContext(ctx, `SELECT sum(n) FROM bench_rebuild_batched`).Scan(&gotBatched); err != nil {
		return nil, err
	}
	if gotBatched.Int64 != int64(n) {
		return nil, fmt.Errorf("ApplyBatch read model counts %d events, want %d", gotBatched.Int64, n)
	}

	// The raw loop, then what bounds both: reading alone (raw, and
	// through the store's gap-safe ReadAll, for a minute at most), and the
	// raw loop writing each page with one set-based upsert instead of one
	// per event.
	rates := map[rawMode]float64{}
	for _, m := range []rawMode{perEvent, readOnly, setBased} {
		if rates[m], err = timeIt(n, func() error { return rawRebuild(ctx, b, n, m) }); err != nil {
			return nil, fmt.Errorf("raw rebuild (%s): %w", m, err)
		}
		if m == readOnly {
			continue
		}
		var got sql.NullInt64
		if err := b.db.QueryRowContext(ctx, `SELECT sum(n) FROM bench_rebuild_raw`).Scan(&got); err != nil {
			return nil, err
		}
		if got.Int64 != int64(n) {
			return nil, fmt.Errorf("raw rebuild (%s) counts %d events, want %d", m, got.Int64, n)
		}
	}
	readAllRate, err := readAllRate(ctx, b, n)
	if err != nil {
		return nil, fmt.Errorf("ReadAll: %w", err)
	}
	var got sql.NullInt64
	if err := b.db.QueryRowContext(ctx, `SELECT sum(n) FROM bench_rebuild`).Scan(&got); err != nil {
		return nil, err
	}
	if got.Int64 != int64(n) {
		return nil, fmt.Errorf("projection's read model counts %d events, want %d", got.Int64, n)
	}
	return []row{
		newRow("rebuild", fmt.Sprintf("%d events, upsert per event", n), "events/s", fwRate, rates[perEvent],
			fmt.Sprintf("database/sql: read %d events by position, upsert each, update checkpoint, commit", rebuildPage)).
			withTarget(atLeast(50_000, ">= 50,000 events/s")).
			with("raw_read_only_events_per_s", rates[readOnly]).
			with("store_readall_only_events_per_s", readAllRate).
			with("raw_set_based_upsert_events_per_s", rates[setBased]),
		newRow("rebuild", fmt.Sprintf("%d events, set-based ApplyBatch", n), "events/s", batchedRate, rates[setBased],
			fmt.Sprintf("database/sql: read %d events by position, one multi-row upsert per page, update checkpoint, commit", rebuildPage)).
			withTarget(atLeast(50_000, ">= 50,000 events/s")),
	}, nil
}

// readAllBudget bounds the ReadAll-only measurement: it is an aside, and
// its rate is steady enough after a minute.
const readAllBudget = time.Minute

// readAllRate reads the log through the store's ReadAll (the projection's
// read) a page at a time, for at most readAllBudget, and returns the
// rate.
func readAllRate(ctx context.Context, b *backend, n int) (float64, error) {
	var cur event.Cursor
	start := time.Now()
	done := 0
	for time.Since(start) < readAllBudget {
		page, err := b.store.ReadAll(ctx, cur, rebuildPage)
		if err != nil {
			return 0, err
		}
		if len(page) == 0 {
			if done != n {
				return 0, fmt.Errorf("ReadAll returned %d events, want %d", done, n)
			}
			break
		}
		done += len(page)
		cur = page[len(page)-1].Cursor()
	}
	return float64(done) / time.Since(start).Seconds(), nil
}

// rawMode is what the raw rebuild does with each page it reads.
type rawMode int

const (
	perEvent rawMode = iota // an upsert per event, as the projection's Apply
	readOnly                // nothing: the cost of reading
	setBased                // one upsert per page, of each stream's count
)

func (m rawMode) String() string {
	return [...]string{"upsert per event", "read only", "set-based upsert"}[m]
}

func upsertRebuild(ctx context.Context, tx *sql.Tx, table, stream string, version int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (stream_id, n, last_version) VALUES ($1, 1, $2)
		ON CONFLICT (stream_id) DO UPDATE SET n = `+table+`.n + 1, last_version = $2`, stream, version)
	return err
}

// rawRebuild reads every event in pages by position; unless mode is
// readOnly, it applies each page to bench_rebuild_raw (emptied first) and
// saves its checkpoint, in a transaction per page.
func rawRebuild(ctx context.Context, b *backend, n int, mode rawMode) error {
	if mode != readOnly {
		if _, err := b.db.ExecContext(ctx, `DELETE FROM bench_rebuild_raw`); err != nil {
			return err
		}
	}
	sel := `SELECT position, id, stream_id, stream_type, version, type, schema_version, data, metadata, recorded_at
		FROM ` + b.table("events") + ` WHERE position > $1 ORDER BY position LIMIT $2`
	var after int64
	done := 0
	page := make([]rawEvent, 0, rebuildPage)
	for {
		rs, err := b.db.QueryContext(ctx, sel, after, rebuildPage)
		if err != nil {
			return err
		}
		page = page[:0]
		for rs.Next() {
			var r rawEvent
			if err := rs.Scan(&r.position, &r.id, &r.stream, &r.st, &r.version, &r.typ, &r.schema, &r.data, &r.md, &r.recordedAt); err != nil {
				rs.Close()
				return err
			}
			page = append(page, r)
		}
		if err := rs.Close(); err != nil {
			return err
		}
		if err := rs.Err(); err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1].position
		done += len(page)
		if mode == readOnly {
			continue
		}
		tx, err := b.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if mode == setBased {
			err = upsertPage(ctx, tx, b, page)
		} else {
			for _, r := range page {
				if err = upsertRebuild(ctx, tx, "bench_rebuild_raw", r.stream, r.version); err != nil {
					break
				}
			}
		}
		if err == nil {
			_, err = tx.ExecContext(ctx, `UPDATE bench_checkpoint SET position = $1 WHERE name = 'raw'`, after)
		}
		if err == nil {
			err = tx.Commit()
		}
		if err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	if done != n {
		return fmt.Errorf("read %d events, want %d", done, n)
	}
	return nil
}

// rawEvent is an event row as the raw rebuild reads it.
type rawEvent struct {
	position, version   int64
	id, stream, st, typ string
	schema              int
	data, md            []byte
	recordedAt          any
}

// upsertPage adds a page's events to bench_rebuild_raw with one
// statement: per stream, the count and the last version.
func upsertPage(ctx context.Context, tx *sql.Tx, b *backend, page []rawEvent) error {
	return upsertPageInto(ctx, tx, b, "bench_rebuild_raw", page)
}

// upsertPageInto is upsertPage into table.
func upsertPageInto(ctx context.Context, tx *sql.Tx, b *backend, table string, page []rawEvent) error {
	type agg struct{ n, last int64 }
	per := map[string]*agg{}
	var order []string
	for _, r := range page {
		a := per[r.stream]
		if a == nil {
			a = &agg{}
			per[r.stream] = a
			order = append(order, r.stream)
		}
		a.n++
		a.last = max(a.last, r.version)
	}
	args := make([]any, 0, 3*len(order))
	for _, s := range order {
		args = append(args, s, per[s].n, per[s].last)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (stream_id, n, last_version) VALUES `+b.values(len(order), 3)+`
		ON CONFLICT (stream_id) DO UPDATE SET n = `+table+`.n + excluded.n, last_version = excluded.last_version`, args...)
	return err
}
