package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"

	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/kafka"
	"github.com/cqrskit/cqrskit/messagebus/natsjs"
)

// brokerFlags name the broker deadletters replay publishes to. The CLI
// never creates or changes a NATS stream or a Kafka topic.
type brokerFlags struct {
	natsURL, natsStream, natsPrefix string
	kafkaBrokers                    []string
}

func (f *brokerFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.natsURL, "nats-url", "", "publish to this NATS JetStream server (nats://host:4222)")
	fs.StringVar(&f.natsStream, "nats-stream", "CQRSKIT", "the JetStream stream the services use")
	fs.StringVar(&f.natsPrefix, "nats-subject-prefix", "cqrskit", "the services' subject prefix")
	fs.StringSliceVar(&f.kafkaBrokers, "kafka-brokers", nil, "publish to these Kafka brokers (host:9092,...)")
}

// publisher is an open broker connection for replays.
type publisher struct {
	messagebus.Publisher
	name string
	// dupWindow is how long the broker drops a message ID it has seen
	// (JetStream's duplicate window); 0 for Kafka.
	dupWindow time.Duration
	close     func()
}

// open connects to the broker the flags name.
func (f *brokerFlags) open(ctx context.Context) (*publisher, error) {
	quiet := slog.New(slog.DiscardHandler)
	switch {
	case f.natsURL != "" && len(f.kafkaBrokers) > 0:
		return nil, usagef("give --nats-url or --kafka-brokers, not both")
	case f.natsURL != "":
		return openNATS(ctx, f, quiet)
	case len(f.kafkaBrokers) > 0:
		b, err := kafka.New(ctx, kafka.Config{Brokers: f.kafkaBrokers, ClientID: "cqrskit-cli", DisableTopicCreation: true, Logger: quiet})
		if err != nil {
			return nil, err
		}
		return &publisher{Publisher: b, name: fmt.Sprintf("Kafka %v", f.kafkaBrokers), close: func() { b.Close() }}, nil
	}
	return nil, usagef("replay republishes to the broker: give --nats-url or --kafka-brokers")
}

func openNATS(ctx context.Context, f *brokerFlags, log *slog.Logger) (*publisher, error) {
	nc, err := nats.Connect(f.natsURL, nats.Name("cqrskit-cli"), nats.Timeout(connectTimeout))
	if err != nil {
		return nil, fmt.Errorf("cannot connect to NATS at %s: %w", f.natsURL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("JetStream at %s: %w", f.natsURL, err)
	}
	s, err := js.Stream(ctx, f.natsStream)
	if err != nil {
		nc.Close()
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("NATS at %s has no stream %q: pass the services' --nats-stream", nc.ConnectedUrlRedacted(), f.natsStream)
		}
		return nil, fmt.Errorf("look up stream %q at %s: %w", f.natsStream, nc.ConnectedUrlRedacted(), err)
	}
	b, err := natsjs.New(ctx, natsjs.Config{Conn: nc, Stream: f.natsStream, SubjectPrefix: f.natsPrefix, UseExistingStream: true, Logger: log})
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &publisher{
		Publisher: b,
		name:      fmt.Sprintf("NATS %s stream %s", nc.ConnectedUrlRedacted(), f.natsStream),
		dupWindow: s.CachedInfo().Config.Duplicates,
		close:     func() { b.Close(); nc.Close() },
	}, nil
}
