package natsjs_test

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/natsjs"
	"github.com/cqrskit/cqrskit/testutil/natstest"
)

// The two benchmarks publish the same messages (batches of 1,000, 256-byte
// payloads, 100 keys, metadata headers, a unique Nats-Msg-Id each) to a
// file-storage stream on an in-process server. Compare them within one
// run:
//
//	go test -run '^$' -bench 'Publish' -benchtime 100x ./messagebus/natsjs/

const benchBatch = 1000

var (
	benchPayload = make([]byte, 256)
	benchHeaders = map[string]string{
		"Cqrs-Correlation-Id": "0190f3a2-6c1e-7d35-9a1b-5c3e2f1a0b9d",
		"traceparent":         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
)

func benchKey(i int) string { return "product-" + strconv.Itoa(i%100) }

func BenchmarkPublish(b *testing.B) {
	url := natstest.URL(b)
	br := newBroker(b, url, natsjs.Config{Logger: slog.New(slog.DiscardHandler)})
	msgs := make([]messagebus.Message, benchBatch)
	for i := range msgs {
		msgs[i] = messagebus.Message{Topic: "product", Key: benchKey(i), Payload: benchPayload, Headers: benchHeaders}
	}
	ctx := context.Background()
	n := 0
	for b.Loop() {
		for i := range msgs {
			msgs[i].ID = "msg-" + strconv.Itoa(n)
			n++
		}
		if err := br.Publish(ctx, msgs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkRawPublishAsync(b *testing.B) {
	url := natstest.URL(b)
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
	}); err != nil {
		b.Fatal(err)
	}
	futures := make([]jetstream.PubAckFuture, benchBatch)
	n := 0
	for b.Loop() {
		for i := range futures {
			h := nats.Header{}
			for k, v := range benchHeaders {
				h[k] = []string{v}
			}
			h[jetstream.MsgIDHeader] = []string{"msg-" + strconv.Itoa(n)}
			n++
			f, err := js.PublishMsgAsync(&nats.Msg{Subject: "raw.product." + benchKey(i), Data: benchPayload, Header: h})
			if err != nil {
				b.Fatal(err)
			}
			futures[i] = f
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(10 * time.Second):
			b.Fatal("acks did not arrive")
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkPublishKeys publishes batches of 1,000 messages spread over
// 1,000, 10 or 1 keys, on the in-process and the machine's server: the
// price of holding each key to one unacknowledged message.
//
//	go test -run '^$' -bench 'PublishKeys' -benchtime 20x ./messagebus/natsjs/
func BenchmarkPublishKeys(b *testing.B) {
	servers := []struct {
		name string
		url  func(testing.TB) string
	}{{"inprocess", natstest.URL}, {"machine", natstest.Machine}}
	for _, srv := range servers {
		b.Run(srv.name, func(b *testing.B) {
			url := srv.url(b)
			for _, keys := range []int{1000, 10, 1} {
				b.Run("keys="+strconv.Itoa(keys), func(b *testing.B) {
					br := newBroker(b, url, natsjs.Config{Logger: slog.New(slog.DiscardHandler)})
					msgs := make([]messagebus.Message, benchBatch)
					for i := range msgs {
						msgs[i] = messagebus.Message{Topic: "product", Key: "product-" + strconv.Itoa(i%keys), Payload: benchPayload, Headers: benchHeaders}
					}
					ctx := context.Background()
					n := 0
					for b.Loop() {
						for i := range msgs {
							msgs[i].ID = "msg-" + strconv.Itoa(n)
							n++
						}
						if err := br.Publish(ctx, msgs...); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
				})
			}
		})
	}
}
