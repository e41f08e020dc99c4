package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cqrskit/cqrskit/es"
)

// loadScenario: loading one aggregate of LoadEvents events through
// Repository.Load, by full replay (beside a database/sql loop reading the
// same rows and applying the decoded payloads) and from a snapshot
// (beside the full replay: the target is a speed-up).
type loadScenario struct{}

func (loadScenario) Name() string { return "load" }

const loadID = "long"

func (loadScenario) Run(ctx context.Context, e *env) (_ []row, err error) {
	n := e.sizes.LoadEvents
	b, err := e.openBackend(ctx, "load", 4)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, b.close()) }()
	plain, err := newRepository(b.store, nil, nil, e.log)
	if err != nil {
		return nil, err
	}
	// Write the aggregate 1,000 events per save.
	p, err := newProduct(loadID, min(n, 1000))
	if err != nil {
		return nil, err
	}
	for v := min(n, 1000); ; {
		if err := plain.Save(ctx, p); err != nil {
			return nil, err
		}
		if v >= n {
			break
		}
		for range min(1000, n-v) {
			v++
			if err := es.Raise(p, priceChanged{PriceCents: int64(1999 + v)}); err != nil {
				return nil, err
			}
		}
	}
	// Take the snapshot at the last version by loading once through a
	// repository that snapshots on every load.
	taker, err := newRepository(b.store, b.store, es.EveryN(1), e.log)
	if err != nil {
		return nil, err
	}
	if _, err := taker.Load(ctx, loadID); err != nil {
		return nil, err
	}
	if snap, ok, err := b.store.LoadSnapshot(ctx, streamType+"-"+loadID); err != nil || !ok || snap.Version != int64(n) {
		return nil, fmt.Errorf("snapshot at version %d (found %v, %v); want one at %d", snap.Version, ok, err, n)
	}
	snapped, err := newRepository(b.store, b.store, es.EveryN(1<<40), e.log)
	if err != nil {
		return nil, err
	}
	check := func(p *product, version int64) error {
		if version != int64(n) || p.Changes != n-1 {
			return fmt.Errorf("loaded version %d with %d changes, want %d and %d", version, p.Changes, n, n-1)
		}
		return nil
	}

	replay, err := alternate(ctx, 1, e.sizes.LoadReplays,
		func(ctx context.Context, _ int) error {
			p, err := plain.Load(ctx, loadID)
			if err != nil {
				return err
			}
			return check(p, p.Version())
		},
		func(ctx context.Context, _ int) error {
			p, version, err := rawReplay(ctx, b, streamType+"-"+loadID)
			if err != nil {
				return err
			}
			return check(p, version)
		})
	if err != nil {
		return nil, fmt.Errorf("full replay: %w", err)
	}
	snapRate, err := timeIt(e.sizes.LoadSnapshotLoads, func() error {
		for range e.sizes.LoadSnapshotLoads {
			p, err := snapped.Load(ctx, loadID)
			if err != nil {
				return err
			}
			if err := check(p, p.Version()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot load: %w", err)
	}
	return []row{
		newRow("load", fmt.Sprintf("%d events, full replay", n), "events/s", replay.framework*float64(n), replay.raw*float64(n),
			"database/sql: SELECT the stream's rows, json.Unmarshal, Apply").
			with("replay_ms", 1000/replay.framework),
		newRow("load", fmt.Sprintf("%d events, from a snapshot", n), "loads/s", snapRate, replay.framework,
			"Repository.Load by full replay, same run").
			withTarget(ratioAtLeast(20, ">= 20x faster than replay")).
			with("snapshot_load_ms", 1000/snapRate).with("replay_ms", 1000/replay.framework),
	}, nil
}

// rawReplay reads a stream's events with one query and applies them, as
// hand-written code would. It returns the state and the last version.
func rawReplay(ctx context.Context, b *backend, stream string) (*product, int64, error) {
	rs, err := b.db.QueryContext(ctx, `SELECT version, type, data FROM `+b.table("events")+` WHERE stream_id = $1 ORDER BY version`, stream)
	if err != nil {
		return nil, 0, err
	}
	defer rs.Close()
	p := &product{}
	var version int64
	for rs.Next() {
		var typ string
		var data []byte
		if err := rs.Scan(&version, &typ, &data); err != nil {
			return nil, 0, err
		}
		var payload any
		switch typ {
		case typeCreated:
			var c productCreated
			err = json.Unmarshal(data, &c)
			payload = c
		case typePriceChang:
			var c priceChanged
			err = json.Unmarshal(data, &c)
			payload = c
		default:
			err = fmt.Errorf("unknown event type %q", typ)
		}
		if err == nil {
			err = p.Apply(payload)
		}
		if err != nil {
			return nil, 0, err
		}
	}
	return p, version, rs.Err()
}
