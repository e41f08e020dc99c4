package infra

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/kafka"
	"github.com/cqrskit/cqrskit/messagebus/natsjs"
)

// bus is the opened broker and what it took to open it.
type bus struct {
	messagebus.Broker
	describe string
	close    func() error
}

// openBroker connects to the broker named by cfg: Kafka, an external NATS
// server, or an in-process NATS server with JetStream storing its files
// in the data directory.
func openBroker(ctx context.Context, cfg Config, log *slog.Logger) (*bus, error) {
	switch {
	case len(cfg.KafkaBrokers) > 0:
		b, err := kafka.New(ctx, kafka.Config{Brokers: cfg.KafkaBrokers, ClientID: "cqrskit-sample", Logger: log})
		if err != nil {
			return nil, err
		}
		return &bus{Broker: b, describe: "Kafka " + strings.Join(cfg.KafkaBrokers, ","), close: b.Close}, nil
	case cfg.NATSURL != "":
		b, err := natsjs.New(ctx, natsjs.Config{URL: cfg.NATSURL, Stream: cfg.NATSStream,
			SubjectPrefix: cfg.NATSSubjectPrefix, Logger: log})
		if err != nil {
			return nil, err
		}
		return &bus{Broker: b, describe: "NATS JetStream " + redactURL(cfg.NATSURL), close: b.Close}, nil
	}
	return openEmbeddedNATS(ctx, cfg, log)
}

// openEmbeddedNATS starts a NATS server with JetStream inside the process.
// It does not listen on any port: the broker connects in process, so
// nothing clashes with a NATS server already on the machine.
func openEmbeddedNATS(ctx context.Context, cfg Config, log *slog.Logger) (*bus, error) {
	srv, err := server.NewServer(&server.Options{
		ServerName: "cqrskit-sample",
		JetStream:  true,
		StoreDir:   cfg.natsDir(),
		DontListen: true,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("in-process NATS server: %w", err)
	}
	srv.Start()
	stop := func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
	if !srv.ReadyForConnections(30 * time.Second) {
		stop()
		return nil, fmt.Errorf("in-process NATS server (JetStream in %s) not ready within 30s", cfg.natsDir())
	}
	// No reconnect buffer: publishing during an outage fails at once
	// instead of waiting for an ack that cannot come (see natsjs.Config).
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Name("cqrskit-sample"),
		nats.ReconnectBufSize(-1), nats.MaxReconnects(-1))
	if err != nil {
		stop()
		return nil, fmt.Errorf("connect to the in-process NATS server: %w", err)
	}
	b, err := natsjs.New(ctx, natsjs.Config{Conn: nc, Stream: cfg.NATSStream, SubjectPrefix: cfg.NATSSubjectPrefix, Logger: log})
	if err != nil {
		nc.Close()
		stop()
		return nil, err
	}
	return &bus{Broker: b, describe: "in-process NATS JetStream (" + cfg.natsDir() + ")", close: func() error {
		err := b.Close()
		nc.Close()
		stop()
		return err
	}}, nil
}

// redactURL hides a URL's password; a string that is no URL is returned
// without its user information.
func redactURL(s string) string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		u, err := url.Parse(strings.TrimSpace(part))
		if err != nil {
			out = append(out, "(unparsable URL)")
			continue
		}
		out = append(out, u.Redacted())
	}
	return strings.Join(out, ",")
}
