package natsjs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/internal/pubbatch"
)

// Publish implements messagebus.Publisher. It sends the messages with
// PublishMsgAsync, Nats-Msg-Id set to the message ID, pipelined across
// keys but with at most one unacknowledged message per key: a key's next
// message is sent once the previous one's ack arrived, so a lost ack
// (timeout, leader election, a rejection after sending) can never leave
// the stream with a later message of the key stored before an earlier
// one. The wait for acks is bounded by PublishTimeout and ctx. A message
// the server reports as a duplicate counts as acknowledged: it was stored
// before.
//
// While the connection is down Publish fails at once with
// messagebus.ErrUnavailable; the client reconnects in the background.
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
	case !b.nc.IsConnected():
		batch.FailAll(fmt.Errorf("not connected to %s (%s): %w", b.url, b.nc.Status(), messagebus.ErrUnavailable))
		return batch.Err()
	}
	start := time.Now()
	deadline := start.Add(b.cfg.PublishTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	limit, what := b.sizeLimit()
	// In flight, oldest first. Acks come back in send order, so waiting
	// on the oldest costs nothing.
	var fifo []inflight
	send := func(i int) {
		if !batch.Next(i) {
			return
		}
		nm := b.natsMsg(msgs[i])
		if size := msgSize(nm); size > limit {
			batch.Reject(i, &messagebus.MessageTooLargeError{Size: size, Limit: limit, What: what})
			return
		}
		// Past maxPending unacknowledged publishes, PublishMsgAsync waits
		// for a free slot up to the stall wait: let it wait as long as
		// Publish may.
		f, err := b.js.PublishMsgAsync(nm, jetstream.WithStallWait(max(time.Until(deadline), time.Millisecond)))
		if err != nil {
			batch.Reject(i, b.sendErr(nm, err))
			return
		}
		fifo = append(fifo, inflight{i, f})
	}
	for i := range msgs {
		send(i)
	}
	// ctx's deadline, if sooner, ends the wait through ctx.Done.
	timeout := time.NewTimer(time.Until(start.Add(b.cfg.PublishTimeout)))
	defer timeout.Stop()
	for len(fifo) > 0 {
		head := fifo[0]
		var err error
		select {
		case <-head.f.Ok():
		case e := <-head.f.Err():
			err = b.ackErr(head.f.Msg(), e)
		case <-ctx.Done():
			b.abandon(batch, fifo, fmt.Errorf("no ack before the context ended (the message may be stored): %w", ctx.Err()))
			return batch.Err()
		case <-timeout.C:
			b.abandon(batch, fifo, fmt.Errorf("no ack from %s within %s (the message may be stored): %w: %w",
				b.url, b.cfg.PublishTimeout, jetstream.ErrAsyncPublishTimeout, messagebus.ErrUnavailable))
			return batch.Err()
		}
		fifo = fifo[1:]
		if next, ok := batch.Done(head.i, err); ok {
			send(next)
		}
	}
	return batch.Err()
}

type inflight struct {
	i int
	f jetstream.PubAckFuture
}

// abandon records the outcome of each message in flight: err for those
// without an ack yet. Their keys' held messages fail too.
func (b *Broker) abandon(batch *pubbatch.Batch, fifo []inflight, err error) {
	for _, in := range fifo {
		select {
		case <-in.f.Ok():
			batch.Done(in.i, nil) // a held message behind it stays unsent
		case e := <-in.f.Err():
			batch.Done(in.i, b.ackErr(in.f.Msg(), e))
		default:
			batch.Done(in.i, err)
		}
	}
	batch.FailHeld(fmt.Errorf("not sent, waiting for the ack of an earlier message with its key: %w", err))
}

func (b *Broker) natsMsg(m messagebus.Message) *nats.Msg {
	token, plain := keyToken(m.Key)
	h := make(nats.Header, len(m.Headers)+2)
	for k, v := range m.Headers {
		h[k] = []string{v}
	}
	h[HeaderMsgID] = []string{m.ID}
	if plain {
		delete(h, HeaderKey)
	} else {
		h[HeaderKey] = []string{m.Key}
	}
	return &nats.Msg{Subject: subject(b.cfg.SubjectPrefix, m.Topic, token), Data: m.Payload, Header: h}
}

// sizeLimit is the smaller of the server's max_payload and the stream's
// max_msg_size.
func (b *Broker) sizeLimit() (int, string) {
	limit, what := int(b.nc.MaxPayload()), "server max_payload"
	if b.maxMsgSize > 0 && b.maxMsgSize < limit {
		limit, what = b.maxMsgSize, "stream "+b.cfg.Stream+" max_msg_size"
	}
	return limit, what
}

// msgSize is the size the server compares with its limits: payload plus
// encoded headers.
func msgSize(m *nats.Msg) int {
	n := len(m.Data)
	if len(m.Header) > 0 {
		n += len("NATS/1.0\r\n") + len("\r\n")
		for k, vs := range m.Header {
			for _, v := range vs {
				n += len(k) + len(": ") + len(v) + len("\r\n")
			}
		}
	}
	return n
}

// sendErr explains a message that could not be sent.
func (b *Broker) sendErr(m *nats.Msg, err error) error {
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		return &messagebus.MessageTooLargeError{Size: msgSize(m), Limit: int(b.nc.MaxPayload()), What: "server max_payload"}
	case errors.Is(err, jetstream.ErrTooManyStalledMsgs):
		return fmt.Errorf("send to %s: %d publishes await acks: %w: %w", b.url, maxPending, err, messagebus.ErrUnavailable)
	case isUnavailable(err):
		return fmt.Errorf("send to %s: %w: %w", b.url, err, messagebus.ErrUnavailable)
	}
	return fmt.Errorf("send to %s: %w", b.url, err)
}

// ackErr explains a message the server did not acknowledge.
func (b *Broker) ackErr(m *nats.Msg, err error) error {
	var api *jetstream.APIError
	switch {
	case errors.As(err, &api) && api.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum:
		return &messagebus.MessageTooLargeError{Size: msgSize(m), Limit: b.maxMsgSize, What: "stream " + b.cfg.Stream + " max_msg_size (" + api.Description + ")"}
	case errors.Is(err, jetstream.ErrAsyncPublishTimeout):
		return fmt.Errorf("no ack from %s within %s (the message may be stored): %w: %w", b.url, b.cfg.PublishTimeout, err, messagebus.ErrUnavailable)
	case errors.Is(err, jetstream.ErrNoStreamResponse):
		return fmt.Errorf("no stream on %s answered (stream %s deleted, or JetStream down): %w: %w", b.url, b.cfg.Stream, err, messagebus.ErrUnavailable)
	case isUnavailable(err):
		return fmt.Errorf("connection to %s lost before the ack (the message may be stored): %w: %w", b.url, err, messagebus.ErrUnavailable)
	}
	return fmt.Errorf("stream %s rejected the message: %w", b.cfg.Stream, err)
}
