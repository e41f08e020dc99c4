package infra_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/natsjs"
	"github.com/cqrskit/cqrskit/testutil"
)

func TestZZNatsStopRedelivery(t *testing.T) {
	url := testutil.NATS(t)
	ctx := context.Background()
	b, err := natsjs.New(ctx, natsjs.Config{URL: url, AckWait: 3 * time.Second, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var msgs []messagebus.Message
	for i := range 200 {
		msgs = append(msgs, messagebus.Message{ID: fmt.Sprintf("m%03d", i), Topic: "t", Key: "k", Payload: []byte("x")})
	}
	if err := b.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	start := time.Now()
	h := func(ctx context.Context, d messagebus.Delivery) error {
		time.Sleep(2 * time.Millisecond)
		mu.Lock()
		got = append(got, fmt.Sprintf("%s@%dms#%d", d.ID, time.Since(start).Milliseconds(), d.Attempt))
		mu.Unlock()
		return nil
	}
	for round := range 3 {
		sub, err := b.Subscribe(ctx, "t", "g", h)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		if err := sub.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		t.Logf("round %d: %d handled so far, last %v", round, len(got), got[len(got)-1])
		mu.Unlock()
	}
	sub, _ := b.Subscribe(ctx, "t", "g", h)
	time.Sleep(5 * time.Second)
	sub.Stop(ctx)
	mu.Lock()
	defer mu.Unlock()
	prev := -1
	for _, g := range got {
		var n int
		fmt.Sscanf(g, "m%03d", &n)
		if n != prev+1 {
			t.Logf("order break: after m%03d came %s", prev, g)
		}
		if n > prev {
			prev = n
		}
	}
	t.Logf("total %d", len(got))
}
