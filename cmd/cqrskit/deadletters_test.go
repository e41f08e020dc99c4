package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/handler"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/kafka"
	"github.com/cqrskit/cqrskit/messagebus/natsjs"
	"github.com/cqrskit/cqrskit/testutil/natstest"
)

// putDeadLetter stores a dead letter of e's message for handlerName, first
// failed at failedAt, and returns its ID.
func putDeadLetter(t testing.TB, d *db, handlerName string, e event.Event, topic string, failedAt time.Time) int64 {
	t.Helper()
	ctx := context.Background()
	hs := d.store.(handler.Store)
	m := envelope.Message(e, topic)
	err := hs.PutDeadLetter(ctx, handler.DeadLetter{
		Handler: handlerName, EventID: e.ID, Topic: topic, Payload: m.Payload, Headers: m.Headers,
		Error: "boom: price must be positive", Attempts: 10, FirstFailedAt: failedAt, LastFailedAt: failedAt,
	})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := hs.ListDeadLetters(ctx, handlerName, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.EventID == e.ID {
			return l.ID
		}
	}
	t.Fatalf("dead letter of event %s not stored", e.ID)
	return 0
}

func TestDeadLettersListShowDiscard(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		d := newDB(t, kind)
		evs := d.appendEvents(t, "product-1", 3)
		hourAgo := time.Now().Add(-time.Hour)
		id1 := putDeadLetter(t, d, "projector", evs[0], "product", hourAgo)
		id2 := putDeadLetter(t, d, "mailer", evs[1], "product", hourAgo)
		putDeadLetter(t, d, "projector", evs[2], "product", hourAgo)

		var page deadLetterPage
		d.run(t, "deadletters", "list", "-o", "json").want(t, exitOK).json(t, &page)
		if len(page.DeadLetters) != 3 || page.NextAfter != 0 {
			t.Fatalf("list: %+v", page)
		}
		dl := page.DeadLetters[0]
		if dl.ID != id1 || dl.Handler != "projector" || dl.EventID != evs[0].ID.String() || dl.Topic != "product" ||
			dl.Attempts != 10 || dl.Error == "" || dl.Headers[envelope.HeaderStreamID] != "product-1" || string(dl.Payload) == "" {
			t.Errorf("first dead letter: %+v", dl)
		}
		d.run(t, "deadletters", "list", "--handler", "mailer", "-o", "json").want(t, exitOK).json(t, &page)
		if len(page.DeadLetters) != 1 || page.DeadLetters[0].ID != id2 {
			t.Errorf("--handler mailer: %+v", page)
		}
		d.run(t, "deadletters", "list", "--limit", "1", "-o", "json").want(t, exitOK).json(t, &page)
		if len(page.DeadLetters) != 1 || page.NextAfter != id1 {
			t.Errorf("--limit 1: %+v", page)
		}
		r := d.run(t, "deadletters", "list").want(t, exitOK)
		if !strings.Contains(r.stdout, "boom: price must be positive") || !strings.Contains(r.stdout, "mailer") {
			t.Errorf("list text:\n%s", r.stdout)
		}

		var one deadLetterJSON
		d.run(t, "deadletters", "show", strconv.FormatInt(id2, 10), "-o", "json").want(t, exitOK).json(t, &one)
		if one.ID != id2 || one.Handler != "mailer" {
			t.Errorf("show json: %+v", one)
		}
		r = d.run(t, "deadletters", "show", strconv.FormatInt(id2, 10)).want(t, exitOK)
		for _, want := range []string{"mailer", evs[1].ID.String(), "header Cqrs-Event-Type", "product.renamed", `{"name":"n1"}`, "boom"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("show text lacks %q:\n%s", want, r.stdout)
			}
		}
		d.run(t, "deadletters", "show", "9999").want(t, exitError).oneLineError(t, "dead letter 9999 not found")

		d.run(t, "deadletters", "discard", strconv.FormatInt(id2, 10)).want(t, exitOK)
		d.run(t, "deadletters", "show", strconv.FormatInt(id2, 10)).want(t, exitError)
		d.run(t, "deadletters", "discard", "9999").want(t, exitError).oneLineError(t, "9999")
	})
}

// subscribe runs an idempotent handler named name on topic, doing fn.
func subscribe(t testing.TB, b messagebus.Subscriber, d *db, topic, name string, fn handler.Func) {
	t.Helper()
	h, err := handler.Idempotent(handler.Config{
		Name: name, Store: d.store.(handler.Store), Func: fn,
		Logger: slog.New(slog.DiscardHandler), RetryPolicy: handler.RetryPolicy{MaxAttempts: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscribe(t.Context(), topic, name, h.Handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Stop(context.Background()) })
}

func TestDeadLettersReplayNATS(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		d := newDB(t, kind)
		natsURL := natstest.URL(t)
		broker, err := natsjs.New(t.Context(), natsjs.Config{URL: natsURL, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = broker.Close() })

		// A handler that works now, and one that still fails.
		applied := make(chan event.Event, 10)
		subscribe(t, broker, d, "product", "projector", func(_ context.Context, _ *sql.Tx, e event.Event) error {
			applied <- e
			return nil
		})
		subscribe(t, broker, d, "order", "biller", func(context.Context, *sql.Tx, event.Event) error {
			return handler.Permanent(errors.New("still broken"))
		})

		product := d.appendEvents(t, "product-1", 1)[0]
		order := d.appendEvents(t, "order-1", 1)[0]
		hourAgo := time.Now().Add(-time.Hour)
		fixed := putDeadLetter(t, d, "projector", product, "product", hourAgo)
		broken := putDeadLetter(t, d, "biller", order, "order", hourAgo)
		recent := putDeadLetter(t, d, "projector", d.appendEvents(t, "product-2", 1)[0], "product", time.Now())

		replay := func(id int64) result {
			return d.run(t, "deadletters", "replay", strconv.FormatInt(id, 10), "--nats-url", natsURL, "--wait", "20s")
		}
		r := replay(fixed).want(t, exitOK)
		if !strings.Contains(r.stdout, "handler projector processed event "+product.ID.String()+"; dead letter deleted") {
			t.Errorf("replay output:\n%s", r.stdout)
		}
		select {
		case e := <-applied:
			if e.ID != product.ID || e.StreamID != "product-1" || e.Version != 1 {
				t.Errorf("the handler got %+v", e)
			}
		default:
			t.Error("the handler did not get the event")
		}
		d.run(t, "deadletters", "show", strconv.FormatInt(fixed, 10)).want(t, exitError)

		// Processed since: the dead letter is deleted without publishing.
		again := putDeadLetter(t, d, "projector", product, "product", hourAgo)
		r = replay(again).want(t, exitOK)
		if !strings.Contains(r.stdout, "has processed event "+product.ID.String()+" since") {
			t.Errorf("replay of a processed event:\n%s", r.stdout)
		}

		r = replay(broken).want(t, exitError)
		r.oneLineError(t, fmt.Sprintf("dead letter %d", broken), "handler biller failed again", "still broken")
		if _, err := d.store.GetDeadLetter(t.Context(), broken); err != nil {
			t.Errorf("the failed replay's dead letter: %v", err)
		}

		replay(recent).want(t, exitError).oneLineError(t, "duplicate window")
	})
}

func TestDeadLettersReplayKafka(t *testing.T) {
	t.Parallel()
	d := newDB(t, "sqlite")
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "product"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	broker, err := kafka.New(t.Context(), kafka.Config{Brokers: cluster.ListenAddrs(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = broker.Close() })
	subscribe(t, broker, d, "product", "projector", func(context.Context, *sql.Tx, event.Event) error { return nil })

	e := d.appendEvents(t, "product-1", 1)[0]
	id := putDeadLetter(t, d, "projector", e, "product", time.Now())
	r := d.run(t, "deadletters", "replay", strconv.FormatInt(id, 10), "--kafka-brokers", strings.Join(cluster.ListenAddrs(), ","), "--wait", "30s").want(t, exitOK)
	if !strings.Contains(r.stdout, "dead letter deleted") {
		t.Errorf("replay output:\n%s", r.stdout)
	}
}
