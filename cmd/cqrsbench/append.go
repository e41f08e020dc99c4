package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cqrskit/cqrskit/event"
)

// appendScenario: commands that each append events and their outbox rows
// in one transaction, through Repository.Save, beside a database/sql loop
// doing the same INSERTs (stream row, events, outbox rows) in one
// transaction per command.
type appendScenario struct{}

func (appendScenario) Name() string { return "append" }

func (appendScenario) Run(ctx context.Context, e *env) (_ []row, err error) {
	b, err := e.openBackend(ctx, "append", 24)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, b.close()) }()
	if err := e.steadyState(ctx, b); err != nil {
		return nil, err
	}
	repo, err := newRepository(b.store, nil, nil, e.log)
	if err != nil {
		return nil, err
	}
	raw := newRawAppender(b)
	cases := []struct {
		name            string
		writers, events int
		commands        int
		unit            string
		targeted        bool // DESIGN.md's target: 1 event per command, 16 writers
	}{
		{"1 event/cmd, 1 writer", 1, 1, e.sizes.AppendSingle, "cmd/s", false},
		{"1 event/cmd, 16 writers", 16, 1, e.sizes.AppendParallel, "cmd/s", true},
		{"100 events/cmd, 16 writers", 16, 100, e.sizes.AppendBatch, "events/s", false},
	}
	var rows []row
	for ci, c := range cases {
		fw := func(ctx context.Context, i int) error {
			p, err := newProduct(fmt.Sprintf("fw-%d-%d", ci, i), c.events)
			if err != nil {
				return err
			}
			return repo.Save(ctx, p)
		}
		rw := func(ctx context.Context, i int) error {
			return raw.write(ctx, fmt.Sprintf("product-raw-%d-%d", ci, i), c.events)
		}
		p, err := alternate(ctx, c.writers, c.commands, fw, rw)
		if err != nil {
			return rows, fmt.Errorf("%s: %w", c.name, err)
		}
		per := float64(1)
		if c.unit == "events/s" {
			per = float64(c.events)
		}
		r := newRow("append", c.name, c.unit, p.framework*per, p.raw*per,
			"database/sql: BEGIN; INSERT stream row, events, outbox rows (multi-row); COMMIT")
		if c.targeted {
			r = r.withTarget(ratioAtLeast(0.85, ">= 85 % of raw"))
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// rawAppender writes what an append writes, with plain database/sql: the
// stream row, the events (one multi-row INSERT ... RETURNING position) and
// their outbox rows (one multi-row INSERT), in one transaction.
type rawAppender struct {
	b *backend
	// mu serialises SQLite writers, as any SQLite writer does (the store
	// does the same); PostgreSQL writers run concurrently.
	mu sync.Mutex
}

func newRawAppender(b *backend) *rawAppender { return &rawAppender{b: b} }

func (a *rawAppender) write(ctx context.Context, stream string, events int) error {
	if !a.b.postgres() {
		a.mu.Lock()
		defer a.mu.Unlock()
	}
	tx, err := a.b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO `+a.b.table("streams")+` (stream_id, stream_type, version) VALUES `+a.b.values(1, 3),
		stream, streamType, events); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	cols := 8
	if !a.b.postgres() {
		cols = 9 // recorded_at has no default in SQLite
	}
	args := make([]any, 0, events*cols)
	for v := 1; v <= events; v++ {
		var data []byte
		typ := typeCreated
		if v == 1 {
			data, err = json.Marshal(productCreated{Name: "Widget", SKU: "W-0001", PriceCents: 1999})
		} else {
			typ = typePriceChang
			data, err = json.Marshal(priceChanged{PriceCents: int64(1999 + v)})
		}
		if err != nil {
			return err
		}
		id := event.NewID()
		if a.b.postgres() {
			args = append(args, id, stream, streamType, v, typ, 1, data, "{}")
		} else {
			args = append(args, id.String(), stream, streamType, v, typ, 1, data, "{}", now)
		}
	}
	insert := `INSERT INTO ` + a.b.table("events") + ` (id, stream_id, stream_type, version, type, schema_version, data, metadata`
	if !a.b.postgres() {
		insert += `, recorded_at`
	}
	insert += `) VALUES ` + a.b.values(events, cols) + ` RETURNING position`
	rs, err := tx.QueryContext(ctx, insert, args...)
	if err != nil {
		return err
	}
	positions := make([]any, 0, events*2)
	for rs.Next() {
		var pos int64
		if err := rs.Scan(&pos); err != nil {
			rs.Close()
			return err
		}
		positions = append(positions, pos)
		if !a.b.postgres() {
			positions = append(positions, now)
		}
	}
	if err := rs.Close(); err != nil {
		return err
	}
	if err := rs.Err(); err != nil {
		return err
	}
	outbox := `INSERT INTO ` + a.b.table("outbox") + ` (event_position) VALUES ` + a.b.values(events, 1)
	if !a.b.postgres() {
		outbox = `INSERT INTO ` + a.b.table("outbox") + ` (event_position, created_at) VALUES ` + a.b.values(events, 2)
	}
	if _, err := tx.ExecContext(ctx, outbox, positions...); err != nil {
		return err
	}
	return tx.Commit()
}

// values returns "($1, $2), ($3, $4)" for rows=2, cols=2 with PostgreSQL,
// "(?, ?), (?, ?)" with SQLite (whose driver binds "?" faster than "$n").
func (b *backend) values(rows, cols int) string {
	var sb strings.Builder
	n := 0
	for r := range rows {
		if r > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('(')
		for c := range cols {
			if c > 0 {
				sb.WriteString(", ")
			}
			n++
			if b.postgres() {
				fmt.Fprintf(&sb, "$%d", n)
			} else {
				sb.WriteByte('?')
			}
		}
		sb.WriteByte(')')
	}
	return sb.String()
}
