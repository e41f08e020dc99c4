package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/internal/consume"
)

// HeaderMsgID carries Message.ID in every record.
const HeaderMsgID = "Cqrs-Msg-Id"

// Broker is a messagebus.Broker on Kafka. It is safe for concurrent use.
type Broker struct {
	cfg     Config
	cl      *kgo.Client // produces and administers
	brokers string      // for errors

	topicsMu sync.Mutex
	topics   map[string]bool // topics known to exist

	subs   consume.Registry
	closed atomic.Bool
}

var _ messagebus.Broker = (*Broker)(nil)

// New creates the producing client and checks that a seed broker answers
// within DialTimeout (and ctx).
func New(ctx context.Context, cfg Config) (*Broker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("kafka: invalid config: %w", err)
	}
	b := &Broker{cfg: cfg, brokers: strings.Join(cfg.Brokers, ","), topics: map[string]bool{}}
	cl, err := kgo.NewClient(b.opts(
		kgo.RecordDeliveryTimeout(cfg.PublishTimeout),
		kgo.ProducerLinger(0), // Publish waits for its acks: don't wait for more records
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: client for %s: %w", b.brokers, err)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("kafka: connect to %s: %w: %w", b.brokers, err, messagebus.ErrUnavailable)
	}
	b.cl = cl
	return b, nil
}

// opts returns the options shared by every client, then extra, then the
// user's.
func (b *Broker) opts(extra ...kgo.Opt) []kgo.Opt {
	o := []kgo.Opt{
		kgo.SeedBrokers(b.cfg.Brokers...),
		kgo.ClientID(b.cfg.ClientID),
		kgo.DialTimeout(b.cfg.DialTimeout),
	}
	o = append(o, extra...)
	return append(o, b.cfg.Options...)
}

// ensureTopic creates topic unless it is known to exist or creation is
// disabled.
func (b *Broker) ensureTopic(ctx context.Context, topic string) error {
	if b.cfg.DisableTopicCreation {
		return nil
	}
	b.topicsMu.Lock()
	defer b.topicsMu.Unlock()
	if b.topics[topic] {
		return nil
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(b.cfg.DialTimeout.Milliseconds())
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = topic
	t.NumPartitions = b.cfg.Partitions
	t.ReplicationFactor = b.cfg.ReplicationFactor
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, b.cl)
	if err != nil {
		return fmt.Errorf("create topic %s on %s: %w", topic, b.brokers, b.classify(err))
	}
	for _, rt := range resp.Topics {
		err := kerr.ErrorForCode(rt.ErrorCode)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			msg := ""
			if rt.ErrorMessage != nil {
				msg = ": " + *rt.ErrorMessage
			}
			return fmt.Errorf("create topic %s on %s (%d partitions, replication factor %d): %w%s",
				topic, b.brokers, b.cfg.Partitions, b.cfg.ReplicationFactor, err, msg)
		}
	}
	b.topics[topic] = true
	return nil
}

// classify marks connection failures as messagebus.ErrUnavailable.
func (b *Broker) classify(err error) error {
	var netErr net.Error
	if errors.Is(err, kgo.ErrRecordTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, kerr.RequestTimedOut) || errors.As(err, &netErr) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, kgo.ErrClientClosed) && !b.closed.Load() {
		return fmt.Errorf("%w: %w", err, messagebus.ErrUnavailable)
	}
	return err
}

// Close stops every subscription (each commits what it handled and leaves
// its group) and closes the producing client. Later calls fail with
// ErrClosed.
func (b *Broker) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.subs.Close()
	b.cl.Close()
	return nil
}
