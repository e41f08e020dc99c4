package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/outbox"
)

// drainBatch is the batch of the relay and of the raw loops alike: the
// relay's default.
const drainBatch = 1000

// drainTopic keeps the drained events apart from the sample's topic on a
// shared broker.
const drainTopic = "cqrsbench-drain"

// drainScenario: a pre-filled outbox drained to the broker by
// outbox.Relay, beside the two halves of the work done raw on the same
// rows and messages: the SQL alone (read a batch with its events, delete
// it) and the publish alone (plain nats.go or franz-go async publish of
// the messages the relay published, awaiting the acks of each batch). The
// raw limit is the slower half: a relay could at best overlap the two.
// A hand-written serial loop (claim, publish, await acks, delete) is
// reported beside it.
type drainScenario struct{}

func (drainScenario) Name() string { return "drain" }

func (drainScenario) Run(ctx context.Context, e *env) (_ []row, err error) {
	rows := e.sizes.DrainRows
	b, err := e.openBackend(ctx, "drain", 8)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, b.close()) }()
	br, err := e.openBrokers(ctx, "drain")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, br.close()) }()
	refill := func(what string) error {
		return fill(ctx, e, b, what, streamType, "product-"+strings.ReplaceAll(what, " ", "-"), rows, 100,
			func(int) []byte { return productPayload })
	}

	// The framework: outbox.Relay, one DrainOnce after another (Run's
	// inner step, without the wake-ups).
	if err := refill("relay"); err != nil {
		return nil, err
	}
	pub := &capturing{Publisher: br.fw}
	relay, err := outbox.NewRelay(outbox.Config{Store: b.store, Publisher: pub, BatchSize: drainBatch, Logger: e.log,
		Topic: func(event.Event) string { return drainTopic }})
	if err != nil {
		return nil, err
	}
	fwRate, err := timeIt(rows, func() error {
		for done := 0; done < rows; {
			n, err := relay.DrainOnce(ctx)
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("relay: outbox empty after %d of %d rows", done, rows)
			}
			done += n
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}

	// The SQL half alone.
	if err := refill("sql"); err != nil {
		return nil, err
	}
	d := newRawDrainer(b)
	sqlRate, err := timeIt(rows, func() error {
		return d.drain(ctx, rows, func(context.Context, []rawOutboxRow) error { return nil })
	})
	if err != nil {
		return nil, fmt.Errorf("raw SQL drain: %w", err)
	}

	// The publish half alone: the very messages the relay published.
	msgs := pub.msgs
	pubRate, err := timeIt(len(msgs), func() error {
		for i := 0; i < len(msgs); i += drainBatch {
			if err := br.raw(ctx, msgs[i:min(i+drainBatch, len(msgs))]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("raw publish: %w", err)
	}

	// Both halves by hand, one after the other per batch.
	if err := refill("serial"); err != nil {
		return nil, err
	}
	serialRate, err := timeIt(rows, func() error {
		return d.drain(ctx, rows, func(ctx context.Context, batch []rawOutboxRow) error {
			ms := make([]messagebus.Message, len(batch))
			for i, r := range batch {
				ms[i] = r.message()
			}
			return br.raw(ctx, ms)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("raw serial loop: %w", err)
	}

	limit, what := sqlRate, "raw SQL drain (the slower half)"
	if pubRate < sqlRate {
		limit, what = pubRate, "raw "+e.cfg.broker+" async publish (the slower half)"
	}
	r := newRow("drain", fmt.Sprintf("%d rows to %s, batch %d", rows, brokerName(e), drainBatch), "events/s", fwRate, limit, what).
		withTarget(atLeast(40_000, ">= 40,000 events/s")).
		with("raw_sql_drain_events_per_s", sqlRate).
		with("raw_publish_events_per_s", pubRate).
		with("raw_serial_loop_events_per_s", serialRate)
	return []row{r}, nil
}

func brokerName(e *env) string {
	if e.cfg.broker == "kafka" {
		return "Kafka"
	}
	return "JetStream"
}

// capturing is a Publisher that keeps what it published, for the raw
// publish of the same messages.
type capturing struct {
	outbox.Publisher
	mu   sync.Mutex
	msgs []messagebus.Message
}

func (c *capturing) Publish(ctx context.Context, msgs ...messagebus.Message) error {
	err := c.Publisher.Publish(ctx, msgs...)
	c.mu.Lock()
	c.msgs = append(c.msgs, msgs...)
	c.mu.Unlock()
	return err
}

// rawOutboxRow is an outbox row with its event as the raw loop reads it.
type rawOutboxRow struct {
	id                int64
	eventID, stream   string
	typ               string
	version, position int64
	data, metadata    []byte
}

// message is what a hand-written relay would publish: the payload, the
// event's identity in headers and its metadata as one JSON header.
func (r rawOutboxRow) message() messagebus.Message {
	return messagebus.Message{ID: r.eventID, Topic: drainTopic, Key: r.stream, Payload: r.data, Headers: map[string]string{
		"Cqrs-Event-Type": r.typ, "Cqrs-Stream-Id": r.stream, "Cqrs-Version": strconv.FormatInt(r.version, 10),
		"Cqrs-Position": strconv.FormatInt(r.position, 10), "Cqrs-Metadata": string(r.metadata),
	}}
}

// rawDrainer reads and deletes outbox rows with plain database/sql.
type rawDrainer struct {
	b        *backend
	sel, del string
}

func newRawDrainer(b *backend) *rawDrainer {
	sel := `SELECT o.id, e.id, e.stream_id, e.type, e.version, e.position, e.data, e.metadata
		FROM ` + b.table("outbox") + ` o JOIN ` + b.table("events") + ` e ON e.position = o.event_position
		ORDER BY o.id LIMIT $1`
	return &rawDrainer{b: b, sel: sel, del: `DELETE FROM ` + b.table("outbox") + ` WHERE id = ANY($1)`}
}

// drain reads batches until it has handled rows rows, calling publish on
// each before deleting it.
func (d *rawDrainer) drain(ctx context.Context, rows int, publish func(context.Context, []rawOutboxRow) error) error {
	for done := 0; done < rows; {
		batch, err := d.read(ctx)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return fmt.Errorf("outbox empty after %d of %d rows", done, rows)
		}
		if err := publish(ctx, batch); err != nil {
			return err
		}
		if err := d.delete(ctx, batch); err != nil {
			return err
		}
		done += len(batch)
	}
	return nil
}

func (d *rawDrainer) read(ctx context.Context) ([]rawOutboxRow, error) {
	rs, err := d.b.db.QueryContext(ctx, d.sel, drainBatch)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	batch := make([]rawOutboxRow, 0, drainBatch)
	for rs.Next() {
		var r rawOutboxRow
		var md sql.RawBytes
		if err := rs.Scan(&r.id, &r.eventID, &r.stream, &r.typ, &r.version, &r.position, &r.data, &md); err != nil {
			return nil, err
		}
		r.metadata = append([]byte(nil), md...)
		batch = append(batch, r)
	}
	return batch, rs.Err()
}

func (d *rawDrainer) delete(ctx context.Context, batch []rawOutboxRow) error {
	if d.b.postgres() {
		ids := make([]int64, len(batch))
		for i, r := range batch {
			ids[i] = r.id
		}
		_, err := d.b.db.ExecContext(ctx, d.del, ids)
		return err
	}
	// SQLite: no arrays; delete in chunks of IN lists in one transaction,
	// as the store does.
	tx, err := d.b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for start := 0; start < len(batch); start += 500 {
		chunk := batch[start:min(start+500, len(batch))]
		args := make([]any, len(chunk))
		for i, r := range chunk {
			args[i] = r.id
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+d.b.table("outbox")+` WHERE id IN `+d.b.values(1, len(chunk)), args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}
