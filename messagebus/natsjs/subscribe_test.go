package natsjs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/natsjs"
	"github.com/cqrskit/cqrskit/testutil/natstest"
)

func TestStopKeepsKeyOrder(t *testing.T) {
	t.Run("InProcess", func(t *testing.T) { testStopKeepsKeyOrder(t, natstest.URL(t)) })
	t.Run("Machine", func(t *testing.T) { testStopKeepsKeyOrder(t, natstest.Machine(t)) })
}

// testStopKeepsKeyOrder stops a subscription in the middle of a backlog
// of one key, several times, with Stop or by cancelling its context, and
// subscribes again each time. The messages fetched but not handled must
// come back first: each message handled exactly once, all in order. The
// backlog is smaller than FetchBatch, so the subscription stops while its
// pull is still open on the server.
func testStopKeepsKeyOrder(t *testing.T, url string) {
	const n, rounds = 200, 4
	stream := "CQRSKIT_TEST_STOP_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
	b := newBroker(t, url, natsjs.Config{Stream: stream, AckWait: 2 * time.Second, FetchBatch: 256, Logger: testLogger(t)})
	msgs := make([]messagebus.Message, n)
	for i := range msgs {
		msgs[i] = messagebus.Message{ID: fmt.Sprintf("m%03d", i), Topic: "t", Key: "k", Payload: []byte("x")}
	}
	if err := b.Publish(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		got []string
	)
	all := make(chan struct{})
	h := func(_ context.Context, d messagebus.Delivery) error {
		time.Sleep(2 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		got = append(got, d.ID)
		if len(got) == n {
			close(all)
		}
		return nil
	}
	handled := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	for round := range rounds {
		subCtx, cancelSub := context.WithCancel(t.Context())
		sub, err := b.Subscribe(subCtx, "t", "g", h)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		how := "Stop"
		if round%2 == 0 {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			err = sub.Stop(ctx)
			cancel()
		} else {
			how = "cancel"
			cancelSub()
			select {
			case <-sub.Done():
			case <-time.After(10 * time.Second):
				err = errors.New("subscription still running 10s after its context was cancelled")
			}
		}
		cancelSub()
		if err != nil {
			t.Fatalf("round %d (%s): %v", round, how, err)
		}
		t.Logf("round %d (%s): %d handled; consumer: %s", round, how, handled(), consumerState(t, url, stream))
	}
	sub, err := b.Subscribe(t.Context(), "t", "g", h)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(context.Background())
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		t.Fatalf("%d of %d messages handled", handled(), n)
	}
	time.Sleep(3 * time.Second) // past AckWait: a message delivered twice would be back now
	mu.Lock()
	defer mu.Unlock()
	for i, id := range got {
		if i >= n {
			t.Fatalf("%d deliveries of %d messages; the last: %v", len(got), n, got[n:])
		}
		if id != msgs[i].ID {
			t.Fatalf("delivery %d is %s, want %s: the key's order broke across Stop and Subscribe; deliveries %d to %d: %v",
				i, id, msgs[i].ID, max(0, i-3), min(len(got), i+4)-1, got[max(0, i-3):min(len(got), i+4)])
		}
	}
}

// consumerState describes the stream's consumer (there is one), for the
// log: on failure it shows where the missing messages went.
func consumerState(t *testing.T, url, stream string) string {
	nc, err := nats.Connect(url)
	if err != nil {
		return err.Error()
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(t.Context(), stream)
	if err != nil {
		return err.Error()
	}
	var name string
	for n := range s.ConsumerNames(t.Context()).Name() {
		name = n
	}
	c, err := s.Consumer(t.Context(), name)
	if err != nil {
		return err.Error()
	}
	i := c.CachedInfo()
	return fmt.Sprintf("delivered %d, ack floor %d, ack pending %d, redelivered %d, waiting pulls %d",
		i.Delivered.Consumer, i.AckFloor.Consumer, i.NumAckPending, i.NumRedelivered, i.NumWaiting)
}

// testLogger logs warnings and errors to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}
