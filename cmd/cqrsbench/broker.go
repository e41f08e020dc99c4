package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/kafka"
	"github.com/cqrskit/cqrskit/messagebus/natsjs"
	"github.com/cqrskit/cqrskit/sample/infra"
)

// rawKafkaTopic receives the raw franz-go publishes; the in-process
// cluster is seeded with it (3 partitions, as the framework's topics).
const rawKafkaTopic = "cqrsbench-raw"

// brokers is a scenario's framework broker and, beside it, a plain client
// of the same server publishing to a stream or topic of its own.
type brokers struct {
	// fw is the framework's broker (messagebus/natsjs or messagebus/kafka).
	fw messagebus.Broker
	// raw publishes msgs with the plain client and waits for every ack.
	raw   func(ctx context.Context, msgs []messagebus.Message) error
	close func() error
}

// openBrokers connects both clients. name keeps the scenario's streams
// apart from other scenarios' and other runs' on a shared server.
func (e *env) openBrokers(ctx context.Context, name string) (*brokers, error) {
	if e.cfg.broker == "kafka" {
		return e.openKafka(ctx)
	}
	return e.openNATS(ctx, name)
}

func (e *env) openNATS(ctx context.Context, name string) (*brokers, error) {
	id := e.runID + "_" + name
	fwStream, fwPrefix := strings.ToUpper("cqrsbench_"+id), "cqrsbench_"+id
	rawStream, rawPrefix := strings.ToUpper("cqrsbench_raw_"+id), "cqrsbench_raw_"+id
	fw, err := natsjs.New(ctx, natsjs.Config{URL: e.natsURL, Stream: fwStream, SubjectPrefix: fwPrefix, Logger: e.log})
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(e.natsURL, nats.Name("cqrsbench-raw"))
	if err != nil {
		fw.Close()
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	js, err := jetstream.New(nc)
	if err == nil {
		_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: rawStream, Subjects: []string{rawPrefix + ".>"},
			Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute})
	}
	if err != nil {
		nc.Close()
		fw.Close()
		return nil, fmt.Errorf("create raw stream %s: %w", rawStream, err)
	}
	raw := func(ctx context.Context, msgs []messagebus.Message) error {
		futures := make([]jetstream.PubAckFuture, 0, len(msgs))
		for _, m := range msgs {
			nm := nats.NewMsg(rawPrefix + "." + m.Topic + "." + subjectToken(m.Key))
			nm.Data = m.Payload
			for k, v := range m.Headers {
				nm.Header.Set(k, v)
			}
			nm.Header.Set(jetstream.MsgIDHeader, m.ID)
			f, err := js.PublishMsgAsync(nm)
			if err != nil {
				return err
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	return &brokers{fw: fw, raw: raw, close: func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := fw.Close()
		// Delete both streams: a shared server keeps nothing of the run.
		for _, s := range []string{fwStream, rawStream} {
			if derr := js.DeleteStream(ctx, s); derr != nil && !errors.Is(derr, jetstream.ErrStreamNotFound) {
				err = errors.Join(err, fmt.Errorf("delete stream %s: %w", s, derr))
			}
		}
		nc.Close()
		return err
	}}, nil
}

// subjectToken turns a key into one subject token, as the framework does
// for the keys used here (stream IDs of letters, digits and '-').
func subjectToken(key string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '*' || r == '>' || r <= ' ' {
			return '_'
		}
		return r
	}, key)
}

func (e *env) openKafka(ctx context.Context) (*brokers, error) {
	fw, err := kafka.New(ctx, kafka.Config{Brokers: e.kafka, ClientID: "cqrsbench", Logger: e.log})
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka...), kgo.ClientID("cqrsbench-raw"))
	if err != nil {
		fw.Close()
		return nil, err
	}
	raw := func(ctx context.Context, msgs []messagebus.Message) error {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var first error
		for _, m := range msgs {
			r := &kgo.Record{Topic: rawKafkaTopic, Key: []byte(m.Key), Value: m.Payload,
				Headers: make([]kgo.RecordHeader, 0, len(m.Headers)+1)}
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: kafka.HeaderMsgID, Value: []byte(m.ID)})
			for k, v := range m.Headers {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
			}
			wg.Add(1)
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
				}
				wg.Done()
			})
		}
		wg.Wait()
		return first
	}
	return &brokers{fw: fw, raw: raw, close: func() error {
		cl.Close()
		return fw.Close()
	}}, nil
}

// sampleBroker points the sample's configuration at the run's broker, on
// streams of the scenario's own.
func (e *env) sampleBroker(cfg *infra.Config, name string) {
	if e.cfg.broker == "kafka" {
		cfg.KafkaBrokers = e.kafka
		return
	}
	cfg.NATSURL = e.natsURL
	cfg.NATSStream = strings.ToUpper("cqrsbench_" + e.runID + "_" + name)
	cfg.NATSSubjectPrefix = "cqrsbench_" + e.runID + "_" + name
}

// deleteSampleStream removes the stream sampleBroker named, on NATS.
func (e *env) deleteSampleStream(cfg infra.Config) error {
	if cfg.NATSURL == "" {
		return nil
	}
	nc, err := nats.Connect(cfg.NATSURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, cfg.NATSStream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("delete stream %s: %w", cfg.NATSStream, err)
	}
	return nil
}
