package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/internal/pubbatch"
)

// Publish implements messagebus.Publisher. It produces the messages (key
// = Message.Key, so a key keeps to one partition; ID in the Cqrs-Msg-Id
// header) and waits for their acks. Keys are pipelined, but a key has at
// most one record in flight: its next record is produced once the previous
// one is acknowledged, and not at all after a failure. franz-go keeps a
// partition's order through its own retries, but a failed batch (a
// rejection such as MESSAGE_TOO_LARGE, a timeout, a context) does not stop
// the partition's later batches, so without this a key could be stored as
// 1, 3 and, after the caller's retry, 2. The producer is idempotent: its
// own retries never duplicate a record, but a message published twice by
// the caller is stored twice. Consumers see the duplicate with the same
// ID.
func (b *Broker) Publish(ctx context.Context, msgs ...messagebus.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	batch := pubbatch.New(msgs)
	switch {
	case b.closed.Load():
		batch.FailAll(messagebus.ErrClosed)
		return batch.Err()
	case ctx.Err() != nil:
		batch.FailAll(ctx.Err())
		return batch.Err()
	}
	type result struct {
		i   int
		err error
	}
	// Buffered for every message: a promise never blocks, even after
	// Publish returned.
	results := make(chan result, len(msgs))
	produced := make([]bool, len(msgs)) // awaiting an ack
	pending := 0
	produce := func(i int) {
		if !batch.Next(i) {
			return
		}
		m := msgs[i]
		size := recordSize(m)
		if size > b.cfg.MaxMessageBytes {
			batch.Reject(i, &messagebus.MessageTooLargeError{Size: size, Limit: b.cfg.MaxMessageBytes, What: "kafka.Config.MaxMessageBytes"})
			return
		}
		if err := b.ensureTopic(ctx, m.Topic); err != nil {
			batch.Reject(i, err)
			return
		}
		pending++
		produced[i] = true
		b.cl.Produce(ctx, record(m), func(_ *kgo.Record, err error) { results <- result{i, err} })
	}
	for i := range msgs {
		produce(i)
	}
	// franz-go checks RecordDeliveryTimeout only around requests; while no
	// broker answers, this timer is what bounds the wait.
	timeout := time.NewTimer(b.cfg.PublishTimeout)
	defer timeout.Stop()
	for pending > 0 {
		select {
		case r := <-results:
			pending--
			produced[r.i] = false
			var err error
			if r.err != nil {
				err = b.produceErr(msgs[r.i], r.err)
			}
			if next, ok := batch.Done(r.i, err); ok {
				produce(next)
			}
		case <-ctx.Done():
			// Records still buffered are abandoned; they may yet be stored.
			failWaiting(batch, produced, fmt.Errorf("no ack before the context ended (the message may be stored): %w", ctx.Err()))
			return batch.Err()
		case <-timeout.C:
			failWaiting(batch, produced, fmt.Errorf("no ack from %s within %s (the message may be stored): %w",
				b.brokers, b.cfg.PublishTimeout, messagebus.ErrUnavailable))
			return batch.Err()
		}
	}
	return batch.Err()
}

// failWaiting records err for the records awaiting an ack, which blocks
// their keys, and for the messages held behind keys in flight.
func failWaiting(batch *pubbatch.Batch, produced []bool, err error) {
	for i, waiting := range produced {
		if waiting {
			batch.Done(i, err)
		}
	}
	batch.FailHeld(fmt.Errorf("not sent, waiting for the ack of an earlier message with its key: %w", err))
}

func record(m messagebus.Message) *kgo.Record {
	r := &kgo.Record{Topic: m.Topic, Value: m.Payload, Headers: make([]kgo.RecordHeader, 0, len(m.Headers)+1)}
	if m.Key != "" {
		r.Key = []byte(m.Key)
	}
	r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderMsgID, Value: []byte(m.ID)})
	for k, v := range m.Headers {
		if k != HeaderMsgID {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	}
	return r
}

func recordSize(m messagebus.Message) int { return m.Size() + len(HeaderMsgID) }

func (b *Broker) produceErr(m messagebus.Message, err error) error {
	switch {
	case errors.Is(err, kerr.MessageTooLarge):
		return &messagebus.MessageTooLargeError{Size: recordSize(m), Limit: b.cfg.MaxMessageBytes,
			What: "rejected by the broker: the topic's max.message.bytes is below kafka.Config.MaxMessageBytes"}
	case errors.Is(err, kerr.InvalidTopicException):
		return &messagebus.ValidationError{Field: "Topic", Value: m.Topic, Reason: "rejected by the broker: " + err.Error()}
	case errors.Is(err, kerr.UnknownTopicOrPartition) && b.cfg.DisableTopicCreation:
		return fmt.Errorf("produce to %s on %s: topic does not exist and DisableTopicCreation is set: %w", m.Topic, b.brokers, err)
	}
	return fmt.Errorf("produce to %s on %s: %w", m.Topic, b.brokers, b.classify(err))
}
