package natstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqrskit/cqrskit/testutil/natstest"
)

func TestNATSRestartKeepsPortAndStore(t *testing.T) {
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
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s.1", []byte("kept")); err != nil {
		t.Fatal(err)
	}

	srv.Shutdown()
	if srv.Running() {
		t.Fatal("Running after Shutdown")
	}
	if _, err := nats.Connect(srv.URL, nats.Timeout(time.Second)); err == nil {
		t.Fatal("connected to a shut-down server")
	}
	srv.Restart()

	// The old connection reconnects to the same port and finds the message.
	deadline := time.Now().Add(20 * time.Second)
	for !nc.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("client did not reconnect after Restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var msg *jetstream.RawStreamMsg
	for {
		s, err := js.Stream(ctx, "S")
		if err == nil {
			if msg, err = s.GetMsg(ctx, 1); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream message after restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if string(msg.Data) != "kept" {
		t.Fatalf("message after restart = %q, want %q", msg.Data, "kept")
	}
}

func TestNATSURL(t *testing.T) {
	u := natstest.URL(t)
	nc, err := nats.Connect(u)
	if err != nil {
		t.Fatalf("connect to %s: %v", u, err)
	}
	nc.Close()
}

func TestMachineNATS(t *testing.T) {
	u := natstest.Machine(t)
	nc, err := nats.Connect(u, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect to %s: %v", u, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(t.Context()); err != nil {
		t.Fatalf("JetStream on %s: %v", u, err)
	}
}
