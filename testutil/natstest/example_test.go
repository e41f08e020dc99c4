package natstest_test

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqrskit/cqrskit/internal/exampletb"
	"github.com/cqrskit/cqrskit/testutil/natstest"
)

// Start runs an in-process server with JetStream for the test; Shutdown
// and Restart simulate an outage, after which stored messages are still
// there. In a test, pass its *testing.T: srv := natstest.Start(t).
func ExampleStart() {
	t := exampletb.New("ExampleStart")
	defer t.Done()

	srv := natstest.Start(t)
	nc, err := nats.Connect(srv.URL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SHOP", Subjects: []string{"shop.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "shop.product", []byte("created")); err != nil {
		t.Fatal(err)
	}

	srv.Shutdown()
	fmt.Println("running:", srv.Running())
	srv.Restart()
	fmt.Println("running:", srv.Running())

	msg, err := stream.GetMsg(ctx, 1)
	for i := 0; err != nil && i < 100; i++ { // the client reconnects
		time.Sleep(50 * time.Millisecond)
		msg, err = stream.GetMsg(ctx, 1)
	}
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("%s %s\n", msg.Subject, msg.Data)
	// Output:
	// running: false
	// running: true
	// shop.product created
}
