//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqrskit/cqrskit/envelope"
)

// The sample's JetStream stream and subjects (infra.Config defaults).
const (
	natsStream  = "CQRSKIT"
	natsSubject = "cqrskit.product.*"
)

// brokerMsg is one message in the broker's stream.
type brokerMsg struct {
	seq     uint64
	id      uuid.UUID
	stream  string
	version int64
}

// brokerLog is the broker's stream of product events, in stream order.
type brokerLog struct {
	msgs []brokerMsg
}

// readBroker reads every product message of the sample's stream through
// nc.
func readBroker(ctx context.Context, nc *nats.Conn) (*brokerLog, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	st, err := js.Stream(ctx, natsStream)
	if err != nil {
		return nil, fmt.Errorf("broker stream %s: %w", natsStream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("broker stream %s: %w", natsStream, err)
	}
	b := &brokerLog{}
	if info.State.Msgs == 0 {
		return b, nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{natsSubject}})
	if err != nil {
		return nil, fmt.Errorf("broker stream %s: ordered consumer: %w", natsStream, err)
	}
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(3*time.Second))
		if err != nil {
			return nil, fmt.Errorf("broker stream %s: fetch: %w", natsStream, err)
		}
		n := 0
		var pending uint64
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			pending = md.NumPending
			h := m.Headers()
			id, _ := uuid.Parse(h.Get("Nats-Msg-Id"))
			version, _ := strconv.ParseInt(h.Get(envelope.HeaderVersion), 10, 64)
			b.msgs = append(b.msgs, brokerMsg{seq: md.Sequence.Stream, id: id, stream: h.Get(envelope.HeaderStreamID), version: version})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("broker stream %s: fetch: %w", natsStream, err)
		}
		if n == 0 || pending == 0 {
			return b, nil
		}
	}
}

// readBrokerURL reads the stream of the NATS server at url.
func readBrokerURL(ctx context.Context, url string) (*brokerLog, error) {
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	return readBroker(ctx, nc)
}

// readBrokerDir reads the stream the embedded sample left in its JetStream
// directory, through an in-process server of our own (the sample has
// stopped).
func readBrokerDir(ctx context.Context, storeDir string) (*brokerLog, error) {
	srv, err := server.NewServer(&server.Options{ServerName: "cqrschaos-reader", JetStream: true,
		StoreDir: storeDir, DontListen: true, NoSigs: true, NoLog: true})
	if err != nil {
		return nil, err
	}
	srv.Start()
	defer func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}()
	if !srv.ReadyForConnections(30 * time.Second) {
		return nil, fmt.Errorf("in-process NATS server on %s not ready", storeDir)
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	return readBroker(ctx, nc)
}
