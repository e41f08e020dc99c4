package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/envelope"
	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/messagebus"
	busmem "github.com/cqrskit/cqrskit/messagebus/memory"
	"github.com/cqrskit/cqrskit/outbox"
	"github.com/cqrskit/cqrskit/store/memory"
)

// A hot stream whose first row the broker rejects, with hundreds of rows
// queued behind it, must not hold back any other stream, nor slow the
// relay to one batch per poll interval (the interval here is an hour: a
// relay that waits for it never finishes). Once retried, the stream
// arrives whole and in order.
func TestRelayRejectedRowNeverHoldsBackOtherStreams(t *testing.T) {
	store := memory.New()
	broker := newBroker(t, busmem.Config{})
	got := collect(t, broker, "thing")
	for i := range 500 {
		e := event.Event{StreamType: "thing", Type: "thing.happened", Data: fmt.Appendf(nil, `{"i":%d}`, i)}
		if _, err := store.Append(t.Context(), "hot-1", event.Any, []event.Event{e}); err != nil {
			t.Fatal(err)
		}
	}
	fill(t, store, 20, 10)
	var reject atomic.Bool
	reject.Store(true)
	topic := func(e event.Event) string {
		if e.StreamID == "hot-1" && e.Version == 1 && reject.Load() {
			return "no good!"
		}
		return outbox.DefaultTopic(e)
	}
	_, _ = startRelay(t, outbox.Config{Store: store, Publisher: broker, Notifier: store, Topic: topic, BatchSize: 100,
		PollInterval: time.Hour, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	waitFor(t, "every other stream", func() bool { return got.total.Load() == 200 })
	if n := len(got.versions("hot-1")); n != 0 {
		t.Errorf("%d events of hot-1 published behind its rejected first row, want none", n)
	}
	st, err := store.Stats(t.Context())
	if err != nil || st.Parked != 1 || st.Backlog != 499 {
		t.Fatalf("stats = %+v, %v; want 1 parked and 499 waiting behind it", st, err)
	}
	reject.Store(false)
	parked, err := store.Parked(t.Context(), 0, 10)
	if err != nil || len(parked) != 1 {
		t.Fatalf("parked = %v, %v", parked, err)
	}
	if n, err := store.RetryParked(t.Context(), []int64{parked[0].ID}); err != nil || n != 1 {
		t.Fatalf("retry = %d, %v", n, err)
	}
	waitFor(t, "hot-1 after the retry", func() bool { return len(got.versions("hot-1")) == 500 })
	for i, v := range got.versions("hot-1") {
		if v != int64(i+1) {
			t.Fatalf("hot-1 arrived as %v..., want versions in order", got.versions("hot-1")[:i+1])
		}
	}
}

// lossyPublisher forwards to a broker but, like a JetStream server whose
// ack was lost, reports chosen messages failed after storing them, and
// honours the Publisher contract: after a failure it sends nothing more of
// that key.
type lossyPublisher struct {
	inner   outbox.Publisher
	loseAck func(m messagebus.Message) bool
}

func (p *lossyPublisher) Publish(ctx context.Context, msgs ...messagebus.Message) error {
	pe := &messagebus.PublishError{Total: len(msgs)}
	blocked := map[string]bool{}
	for i, m := range msgs {
		if blocked[m.Key] {
			pe.Failed = append(pe.Failed, messagebus.MessageError{Index: i, ID: m.ID, Err: messagebus.ErrEarlierFailed})
			continue
		}
		if err := p.inner.Publish(ctx, m); err != nil {
			return err
		}
		if p.loseAck(m) {
			blocked[m.Key] = true
			pe.Failed = append(pe.Failed, messagebus.MessageError{Index: i, ID: m.ID, Err: errors.New("no ack: " + messagebus.ErrUnavailable.Error())})
		}
	}
	if len(pe.Failed) == 0 {
		return nil
	}
	return pe
}

// A lost ack in the middle of a pipelined batch: the stream's later rows
// are neither sent nor deleted, so the retry publishes the stream again
// from the unacknowledged message, in order (the broker's de-duplication
// drops the copy it had stored).
func TestRelayLostAckKeepsStreamOrder(t *testing.T) {
	store := memory.New()
	broker := newBroker(t, busmem.Config{})
	got := collect(t, broker, "thing")
	fill(t, store, 3, 5)
	var lost atomic.Int32
	pub := &lossyPublisher{inner: broker, loseAck: func(m messagebus.Message) bool {
		return m.Key == "thing-1" && m.Headers[envelope.HeaderVersion] == "2" && lost.Add(1) == 1
	}}
	_, _ = startRelay(t, outbox.Config{Store: store, Publisher: pub, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	waitFor(t, "every stream", func() bool { return len(got.versions("thing-1")) >= 5 && got.total.Load() >= 15 })
	var want []int64
	for _, v := range got.versions("thing-1") {
		if len(want) == 0 || v != want[len(want)-1] {
			want = append(want, v) // collapse the redelivered copy of 2
		}
	}
	for i, v := range want {
		if v != int64(i+1) {
			t.Fatalf("thing-1 arrived as %v, want 1..5 in order", got.versions("thing-1"))
		}
	}
}
