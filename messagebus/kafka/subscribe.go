package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cqrskit/cqrskit/driver"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/internal/consume"
)

// Subscribe implements messagebus.Subscriber with a Kafka consumer group
// named "<group>.<topic>" (group names hold no dots, so the name is
// unambiguous). Offsets are committed after the records of a poll are
// handled, never before. A new group starts at the earliest offset.
func (b *Broker) Subscribe(ctx context.Context, topic, group string, h messagebus.Handler, opts ...messagebus.SubscribeOption) (messagebus.Subscription, error) {
	if err := driver.ValidateSubscribe(topic, group, h); err != nil {
		return nil, err
	}
	sc, err := driver.NewSubscribeConfig(messagebus.SubscribeConfig{
		MaxDeliveries: b.cfg.MaxDeliveries,
		RetryDelay:    b.cfg.RetryDelay,
	}, opts...)
	if err != nil {
		return nil, err
	}
	if b.closed.Load() {
		return nil, messagebus.ErrClosed
	}
	if err := b.ensureTopic(ctx, topic); err != nil {
		return nil, fmt.Errorf("kafka: subscribe %s to %s: %w", group, topic, err)
	}
	s := &subscription{
		b:       b,
		h:       h,
		groupID: group + "." + topic,
		policy:  &consume.Policy{SubscribeConfig: sc, Topic: topic, Group: group, Logger: b.cfg.Logger},
	}
	s.cl, err = kgo.NewClient(b.opts(
		kgo.ConsumerGroup(s.groupID),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsLost(func(ctx context.Context, _ *kgo.Client, lost map[string][]int32) {
			b.cfg.Logger.WarnContext(ctx, "kafka: partitions lost; records handled since the last commit will be delivered again",
				"group", s.groupID, "partitions", lost)
		}),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: consumer for group %s on %s: %w", s.groupID, b.brokers, err)
	}
	sub := consume.Start(ctx, s.run)
	if !b.subs.Add(sub) {
		sub.Close()
		return nil, messagebus.ErrClosed
	}
	return sub, nil
}

type subscription struct {
	b       *Broker
	h       messagebus.Handler
	groupID string
	policy  *consume.Policy
	cl      *kgo.Client
}

func (s *subscription) run(ctx context.Context, stop <-chan struct{}) error {
	defer s.cl.CloseAllowingRebalance() // leaves the group
	for failures := 0; ; {
		if stopped(ctx, stop) {
			return ctx.Err()
		}
		pctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-stop:
				cancel()
			case <-pctx.Done():
			}
		}()
		fetches := s.cl.PollRecords(pctx, s.b.cfg.PollRecords)
		cancel()
		if fetches.IsClientClosed() {
			return nil
		}
		var fetchErr error
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				fetchErr = fmt.Errorf("fetch %s[%d] from %s: %w", topic, p, s.b.brokers, err)
			}
		})
		done, interrupted := s.handle(ctx, stop, fetches)
		s.commit(ctx, done)
		s.cl.AllowRebalance()
		if interrupted {
			return ctx.Err()
		}
		if fetchErr == nil {
			failures = 0
			continue
		}
		s.b.cfg.Logger.WarnContext(ctx, "kafka: fetch failed; retrying", "group", s.groupID, "failures", failures+1, "error", fetchErr)
		consume.Sleep(ctx, stop, consume.Backoff(failures))
		failures++
	}
}

// handle hands the polled records to the handler, each key's in order
// (on its lane with WithConcurrency), retrying in place. It returns the
// records handled (or given up on), per partition up to the first one that
// was not, and whether the subscription stopped before the end.
func (s *subscription) handle(ctx context.Context, stop <-chan struct{}, fetches kgo.Fetches) (done []*kgo.Record, interrupted bool) {
	records := fetches.Records()
	handled := make([]bool, len(records))
	var halted atomic.Bool
	lanes := consume.NewLanes(s.policy.Concurrency, len(records))
	for i, r := range records {
		lanes.Go(string(r.Key), func() {
			if halted.Load() || stopped(ctx, stop) {
				halted.Store(true)
				return
			}
			if outcome, _ := s.policy.Deliver(ctx, stop, s.h, delivery(r)); outcome == consume.Interrupted {
				halted.Store(true)
				return
			}
			handled[i] = true
		})
	}
	lanes.Wait()
	type partition struct {
		topic string
		p     int32
	}
	gap := map[partition]bool{}
	for i, r := range records {
		p := partition{r.Topic, r.Partition}
		if gap[p] || !handled[i] {
			gap[p] = true // committing a later offset would skip this record
			continue
		}
		done = append(done, r)
	}
	return done, halted.Load()
}

// commit commits the offsets after the handled records; it runs even when
// the subscription is being stopped hard.
func (s *subscription) commit(ctx context.Context, done []*kgo.Record) {
	if len(done) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.cl.CommitRecords(cctx, done...); err != nil {
		s.b.cfg.Logger.WarnContext(ctx, "kafka: commit failed; handled records will be delivered again",
			"group", s.groupID, "records", len(done), "error", err)
	}
}

func delivery(r *kgo.Record) messagebus.Delivery {
	m := messagebus.Message{Topic: r.Topic, Key: string(r.Key), Payload: r.Value}
	for _, h := range r.Headers {
		if h.Key == HeaderMsgID {
			m.ID = string(h.Value)
			continue
		}
		if m.Headers == nil {
			m.Headers = make(map[string]string, len(r.Headers))
		}
		m.Headers[h.Key] = string(h.Value)
	}
	return messagebus.Delivery{Message: m, Attempt: 1, PublishedAt: r.Timestamp}
}

func stopped(ctx context.Context, stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return ctx.Err() != nil
	}
}
