package kafka_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/kafka"
)

// createTopic creates a one-partition topic with the given
// max.message.bytes, behind the broker's back.
func createTopic(t *testing.T, brokers []string, topic string, maxBytes string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 1
	c := kmsg.NewCreateTopicsRequestTopicConfig()
	c.Name, c.Value = "max.message.bytes", &maxBytes
	rt.Configs = append(rt.Configs, c)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(t.Context(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatal(err)
	}
}

// readUntil returns the Cqrs-Msg-Id of every record of topic up to the one
// with ID last, in log order.
func readUntil(t *testing.T, brokers []string, topic, last string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var ids []string
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("record %s not read (%v); read %v", last, err, ids)
		}
		for _, r := range fs.Records() {
			for _, h := range r.Headers {
				if h.Key == kafka.HeaderMsgID {
					ids = append(ids, string(h.Value))
				}
			}
			if ids[len(ids)-1] == last {
				return ids
			}
		}
	}
}

// TestKeyOrderAfterRejectionAfterSend: the broker rejects a record after
// it was produced (the topic's max.message.bytes is below the client's
// MaxMessageBytes). franz-go then fails every record buffered for the
// partition, but not one produced later: here the key's next record comes
// after a message for a new topic, whose creation takes a while. It must
// not be stored, or a retry would store the key as 1, 3, 2. Records of
// other keys in the partition may fail with the rejected batch, so for them
// the test asserts the guarantee itself: the log holds a prefix of each
// key's messages and every later one failed.
func TestKeyOrderAfterRejectionAfterSend(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	topic, slow := "order-"+uuid.NewString()[:8], "slow-"+uuid.NewString()[:8]
	createTopic(t, brokers, topic, "2048")
	c.ControlKey(kmsg.CreateTopics.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if req.(*kmsg.CreateTopicsRequest).Topics[0].Topic == slow {
			c.SleepControl(func() { time.Sleep(300 * time.Millisecond) })
		}
		return nil, nil, false
	})
	b := newBroker(t, kafka.Config{Brokers: brokers, Logger: slog.New(slog.DiscardHandler)})

	msg := func(topic, key string, size int) messagebus.Message {
		payload := make([]byte, size)
		_, _ = rand.Read(payload) // incompressible: the broker sees the size
		return messagebus.Message{ID: uuid.NewString(), Topic: topic, Key: key, Payload: payload}
	}
	msgs := []messagebus.Message{
		msg(topic, "k", 10), msg(topic, "a", 10), msg(topic, "k", 4096), msg(slow, "s", 10), msg(topic, "k", 10),
		msg(topic, "a", 10), msg(topic, "b", 10), msg(topic, "k", 10),
	}
	err = b.Publish(t.Context(), msgs...)
	var pe *messagebus.PublishError
	if !errors.As(err, &pe) {
		t.Fatalf("Publish = %v, want a *PublishError", err)
	}
	failed := map[int]error{}
	for _, f := range pe.Failed {
		failed[f.Index] = f.Err
	}
	if !errors.Is(failed[2], messagebus.ErrMessageTooLarge) {
		t.Errorf("msgs[2] error = %v, want the broker's rejection as ErrMessageTooLarge", failed[2])
	}
	for _, i := range []int{4, 7} {
		if !errors.Is(failed[i], messagebus.ErrEarlierFailed) {
			t.Errorf("msgs[%d] error = %v, want ErrEarlierFailed", i, failed[i])
		}
	}

	end := msg(topic, "end", 10)
	if err := b.Publish(t.Context(), end); err != nil {
		t.Fatal(err)
	}
	stored := readUntil(t, brokers, topic, end.ID)
	pos := map[string]int{}
	for i, id := range stored {
		pos[id] = i
	}
	if _, ok := pos[msgs[0].ID]; !ok {
		t.Errorf("log %v lacks msgs[0], acknowledged", stored)
	}
	// Per key: stored messages first, in order, then only failed ones.
	last := map[string]int{}
	gap := map[string]bool{}
	for i, m := range msgs {
		if m.Topic != topic {
			continue
		}
		p, ok := pos[m.ID]
		_, bad := failed[i]
		switch {
		case ok && bad:
			t.Errorf("msgs[%d] (key %s) stored but reported failed: %v", i, m.Key, failed[i])
		case !ok && !bad:
			t.Errorf("msgs[%d] (key %s) neither stored nor reported failed", i, m.Key)
		case ok && gap[m.Key]:
			t.Errorf("msgs[%d] (key %s) stored after an earlier message of its key failed", i, m.Key)
		case ok && p < last[m.Key]:
			t.Errorf("msgs[%d] (key %s) stored before an earlier message of its key", i, m.Key)
		case ok:
			last[m.Key] = p
		default:
			gap[m.Key] = true
		}
	}
	t.Logf("log: %d records; failed: %v", len(stored), pe.Indexes())
}
