package natsjs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqrskit/cqrskit/driver"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/internal/consume"
)

// pullWait is how long one pull request waits for messages. A stopping
// subscription waits for its pull to end before it naks what it fetched
// (see fetch), so this bounds how much longer than the handler Stop takes;
// an idle subscription pulls this often.
const pullWait = time.Second

// infoTimeout bounds the consumer lookup after an interrupted pull.
const infoTimeout = 5 * time.Second

// redeliveryMargin is added to AckWait when waiting for the server to
// redeliver messages lost with an interrupted pull, for its timer to fire.
const redeliveryMargin = 500 * time.Millisecond

// Subscribe implements messagebus.Subscriber with a durable pull consumer
// named after group and topic (see the package documentation). It creates
// or updates the consumer, so the last subscription's options win for the
// whole group.
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
	s := &subscription{
		b:      b,
		h:      h,
		topic:  topic,
		group:  group,
		name:   consumerName(topic, group),
		policy: &consume.Policy{SubscribeConfig: sc, Topic: topic, Group: group, Logger: b.cfg.Logger},
	}
	if err := s.ensureConsumer(ctx); err != nil {
		return nil, err
	}
	sub := consume.Start(ctx, s.run)
	if !b.subs.Add(sub) {
		sub.Close()
		return nil, messagebus.ErrClosed
	}
	return sub, nil
}

type subscription struct {
	b            *Broker
	h            messagebus.Handler
	topic, group string
	name         string
	policy       *consume.Policy
	cons         jetstream.Consumer
	held         held

	// Owned by the run goroutine.
	lastDelivery uint64 // consumer sequence of the last message received
	interrupted  bool   // a pull ended early; see recoverLost
}

func (s *subscription) ensureConsumer(ctx context.Context) error {
	maxDeliver := -1
	if s.policy.MaxDeliveries > 0 {
		maxDeliver = s.policy.MaxDeliveries
	}
	cons, err := s.b.js.CreateOrUpdateConsumer(ctx, s.b.cfg.Stream, jetstream.ConsumerConfig{
		Durable:       s.name,
		Description:   "cqrskit group " + s.group + " on topic " + s.topic,
		FilterSubject: filter(s.b.cfg.SubjectPrefix, s.topic),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.b.cfg.AckWait,
		MaxDeliver:    maxDeliver,
		MaxAckPending: max(1000, 2*s.b.cfg.FetchBatch),
	})
	if err != nil {
		return fmt.Errorf("natsjs: create consumer %s on stream %s at %s: %w", s.name, s.b.cfg.Stream, s.b.url, s.b.apiErr(err))
	}
	s.cons = cons
	s.lastDelivery = 0 // a recreated consumer counts from 1 again
	return nil
}

func (s *subscription) run(ctx context.Context, stop <-chan struct{}) error {
	kaDone := make(chan struct{})
	defer close(kaDone)
	go s.keepAlive(kaDone)
	defer s.flush()
	for failures := 0; ; {
		if stopped(ctx, stop) {
			return ctx.Err()
		}
		err := s.recoverLost(ctx, stop)
		if err == nil {
			err = s.fetch(ctx, stop)
		}
		if err == nil {
			failures = 0
			continue
		}
		if stopped(ctx, stop) {
			return ctx.Err()
		}
		// The pull may have ended while the server was still sending it
		// messages (or the connection lost them): check before the next.
		s.interrupted = true
		if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
			if cerr := s.ensureConsumer(ctx); cerr != nil {
				err = fmt.Errorf("%w; recreating it: %w", err, cerr)
			}
		}
		level := slog.LevelWarn
		if !s.b.nc.IsConnected() {
			level = slog.LevelDebug // the disconnect is logged once; this repeats until reconnected
		}
		s.b.cfg.Logger.Log(ctx, level, "natsjs: pulling messages failed; retrying",
			"consumer", s.name, "stream", s.b.cfg.Stream, "url", s.b.url, "failures", failures+1, "error", err)
		consume.Sleep(ctx, stop, consume.Backoff(failures))
		failures++
	}
}

// stopped reports whether the subscription should end.
func stopped(ctx context.Context, stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return ctx.Err() != nil
	}
}

// recoverLost runs before the first pull after one that ended with an
// error (server shutdown, lost connection) or spanned a reconnect. That pull
// may have been sent messages that never arrived: a server shutting down
// ends open pulls with "409 Server Shutdown" but goes on delivering to
// them for a moment after the client stopped listening, and a dropped
// connection loses what was in flight. The server redelivers them only
// after AckWait, and pulling at once would hand later messages to the
// handler first. So when the consumer has delivered past the last message
// received and not everything is acknowledged, wait AckWait: the lost
// messages, delivered before now, have expired by then, and the server
// redelivers expired messages in stream order ahead of new ones. The
// deliveries may be another group member's; the wait then only delays
// this one.
func (s *subscription) recoverLost(ctx context.Context, stop <-chan struct{}) error {
	if !s.interrupted {
		return nil
	}
	ictx, cancel := stopContext(ctx, stop, infoTimeout)
	defer cancel()
	info, err := s.cons.Info(ictx)
	if err != nil {
		return fmt.Errorf("look up the consumer after an interrupted pull: %w", err)
	}
	s.interrupted = false
	if info.NumAckPending == 0 || info.Delivered.Consumer <= s.lastDelivery {
		return nil
	}
	wait := s.b.cfg.AckWait + redeliveryMargin
	s.b.cfg.Logger.WarnContext(ctx, "natsjs: a pull ended early and the server delivered messages that did not arrive; waiting for their redelivery to keep the order",
		"consumer", s.name, "stream", s.b.cfg.Stream, "delivered", info.Delivered.Consumer, "received", s.lastDelivery,
		"ack_pending", info.NumAckPending, "wait", wait)
	consume.Sleep(ctx, stop, wait)
	return nil
}

// stopContext derives a context from ctx that ends after d or when stop
// is closed.
func stopContext(ctx context.Context, stop <-chan struct{}, d time.Duration) (context.Context, context.CancelFunc) {
	sctx, cancel := context.WithTimeout(ctx, d)
	go func() {
		select {
		case <-stop:
			cancel()
		case <-sctx.Done():
		}
	}()
	return sctx, cancel
}

// fetch pulls one batch and handles it message by message, in stream
// order.
//
// When the subscription stops, the messages not yet handled are nak'd, so
// the group gets them again at once, ahead of newer ones, rather than after
// AckWait. But only once the pull request has ended on the server: it
// stays open until it has delivered FetchBatch messages or pullWait has
// passed, and the server would redeliver the nak'd messages into it. A
// client that stopped listening then loses them until AckWait (they are
// stranded), and a server that notices the lost interest puts the first of
// them back at the end of its redelivery queue; either way the key's order
// breaks. So a stopping subscription reads the batch to its end, receiving
// everything the server sent, and naks afterwards. The same holds after a
// hard stop (ctx cancelled): the wait is bounded by pullWait.
func (s *subscription) fetch(ctx context.Context, stop <-chan struct{}) error {
	reconnects := s.b.nc.Stats().Reconnects
	batch, err := s.cons.Fetch(s.b.cfg.FetchBatch, jetstream.FetchMaxWait(pullWait))
	if err != nil {
		return err
	}
	s.held.start(batch.Messages())
	// Each message goes to its key's lane (WithConcurrency); with one lane
	// it is handled here, before the next is taken. Every lane is done
	// before the next pull, so a key's order holds across pulls.
	lanes := consume.NewLanes(s.policy.Concurrency, s.b.cfg.FetchBatch)
	for {
		msg, ok := s.held.next()
		if !ok {
			break
		}
		d, err := s.delivery(msg)
		if err != nil {
			s.b.cfg.Logger.ErrorContext(ctx, "natsjs: dropping a message without JetStream metadata", "subject", msg.Subject(), "error", err)
			_ = msg.Term()
			s.held.done(msg)
			continue
		}
		lanes.Go(d.Key, func() {
			if stopped(ctx, stop) || !s.handle(ctx, stop, msg, d) {
				s.held.keep(msg)
				return
			}
			s.held.done(msg)
		})
	}
	lanes.Wait()
	for _, msg := range s.held.release() {
		_ = msg.Nak()
	}
	// A pull that spans a reconnect may have lost messages on the old
	// connection without an error: pulls this short have no heartbeats.
	if s.b.nc.Stats().Reconnects != reconnects || !s.b.nc.IsConnected() {
		s.interrupted = true
	}
	return batch.Error()
}

// handle hands d, the delivery of msg, to the handler and acks, terms or
// (NakOnError) naks it. It reports false when the subscription stopped
// before the message was handled; the caller naks it once the pull has
// ended.
func (s *subscription) handle(ctx context.Context, stop <-chan struct{}, msg jetstream.Msg, d messagebus.Delivery) bool {
	if s.b.cfg.NakOnError {
		return s.handleNak(ctx, stop, msg, d)
	}
	switch outcome, _ := s.policy.Deliver(ctx, stop, s.h, d); outcome {
	case consume.Handled:
		s.settle(ctx, stop, d, "ack", msg.Ack)
	case consume.GaveUp:
		s.settle(ctx, stop, d, "term", msg.Term)
	case consume.Interrupted:
		return false
	}
	return true
}

// handleNak handles d once; a failure is nak'd with the retry delay and
// redelivered by the server.
func (s *subscription) handleNak(ctx context.Context, stop <-chan struct{}, msg jetstream.Msg, d messagebus.Delivery) bool {
	err := consume.Call(ctx, s.h, d)
	switch {
	case err == nil:
		s.settle(ctx, stop, d, "ack", msg.Ack)
	case ctx.Err() != nil:
		return false
	case s.policy.Exhausted(d.Attempt):
		s.policy.GiveUp(ctx, d, err)
		s.settle(ctx, stop, d, "term", msg.Term)
	default:
		delay := s.policy.Delay(err)
		s.policy.LogFailure(ctx, d, err, delay)
		s.settle(ctx, stop, d, "nak", func() error { return msg.NakWithDelay(delay) })
	}
	return true
}

// settle sends an ack, term or nak. While the connection is down it waits
// for the reconnect and sends it again: the server keeps the delivery
// pending, also across its own restart, so the late ack still counts and
// the message is not delivered a second time after AckWait.
func (s *subscription) settle(ctx context.Context, stop <-chan struct{}, d messagebus.Delivery, what string, send func() error) {
	err := send()
	for failures := 0; err != nil && isUnavailable(err) && !s.b.nc.IsClosed(); failures++ {
		if !consume.Sleep(ctx, stop, consume.Backoff(failures)) {
			break
		}
		if s.b.nc.IsConnected() {
			err = send()
		}
	}
	if err != nil {
		s.b.cfg.Logger.WarnContext(ctx, "natsjs: "+what+" not sent; the server will redeliver the message after AckWait",
			"consumer", s.name, "id", d.ID, "error", err)
	}
}

func (s *subscription) delivery(msg jetstream.Msg) (messagebus.Delivery, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return messagebus.Delivery{}, err
	}
	s.lastDelivery = max(s.lastDelivery, meta.Sequence.Consumer)
	m := messagebus.Message{Topic: s.topic, Payload: msg.Data()}
	subj := msg.Subject()
	m.Key = keyFromToken(subj[strings.LastIndexByte(subj, '.')+1:])
	for k, vs := range msg.Headers() {
		if len(vs) == 0 {
			continue
		}
		switch k {
		case HeaderMsgID:
			m.ID = vs[0]
		case HeaderKey:
			m.Key = vs[0]
		default:
			if m.Headers == nil {
				m.Headers = make(map[string]string)
			}
			m.Headers[k] = vs[0]
		}
	}
	return messagebus.Delivery{Message: m, Attempt: int(meta.NumDelivered), PublishedAt: meta.Timestamp}, nil
}

// keepAlive tells the server every AckWait/3 that the fetched messages not
// yet acknowledged are in progress, while a handler runs or waits to retry
// and while a stopping subscription waits for its pull to end, so none is
// redelivered behind the subscription's back (which would break per-key
// order).
func (s *subscription) keepAlive(done <-chan struct{}) {
	t := time.NewTicker(s.b.cfg.AckWait / 3)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			for _, m := range s.held.extend() {
				_ = m.InProgress()
			}
		}
	}
}

// flush makes sure the acks sent reached the server before the
// subscription reports that it stopped.
func (s *subscription) flush() {
	if s.b.nc.IsConnected() {
		_ = s.b.nc.FlushTimeout(5 * time.Second)
	}
}

// held tracks the fetched messages not yet acknowledged: those the
// fetch loop took with next and gave to a lane (active) until the lane
// reports them done or hands them back with keep. keepAlive reads ahead
// into queue only while the fetch loop is not itself waiting for the next
// message, so order is kept.
type held struct {
	mu      sync.Mutex
	src     <-chan jetstream.Msg
	srcDone bool
	reading bool // next is waiting on src
	queue   []jetstream.Msg
	active  map[jetstream.Msg]struct{}
	kept    []jetstream.Msg // not handled; nak'd when the pull has ended
}

func (h *held) start(src <-chan jetstream.Msg) {
	h.mu.Lock()
	h.src, h.srcDone, h.reading, h.queue, h.kept = src, false, false, nil, nil
	h.active = map[jetstream.Msg]struct{}{}
	h.mu.Unlock()
}

// next returns the next fetched message, in order, and counts it active;
// false when the batch is done.
func (h *held) next() (jetstream.Msg, bool) {
	h.mu.Lock()
	if len(h.queue) > 0 {
		m := h.queue[0]
		h.queue = h.queue[1:]
		h.active[m] = struct{}{}
		h.mu.Unlock()
		return m, true
	}
	if h.srcDone {
		h.mu.Unlock()
		return nil, false
	}
	src := h.src
	h.reading = true
	h.mu.Unlock()
	m, ok := <-src
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reading = false
	if !ok {
		h.srcDone = true
		return nil, false
	}
	h.active[m] = struct{}{}
	return m, true
}

// done reports that m was acknowledged, terminated or nak'd.
func (h *held) done(m jetstream.Msg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.active, m)
}

// keep takes back m, not handled.
func (h *held) keep(m jetstream.Msg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.active, m)
	h.kept = append(h.kept, m)
}

// release returns the messages kept, in stream order, once the batch is
// done.
func (h *held) release() []jetstream.Msg {
	h.mu.Lock()
	defer h.mu.Unlock()
	kept := h.kept
	h.src, h.queue, h.active, h.kept = nil, nil, nil, nil
	slices.SortStableFunc(kept, func(a, b jetstream.Msg) int { return cmp.Compare(streamSeq(a), streamSeq(b)) })
	return kept
}

// streamSeq is m's sequence in the stream, 0 if unknown.
func streamSeq(m jetstream.Msg) uint64 {
	meta, err := m.Metadata()
	if err != nil {
		return 0
	}
	return meta.Sequence.Stream
}

// extend returns the messages to keep alive: those kept, those in the
// lanes and those fetched behind them. It reads ahead only while the fetch
// loop is busy (otherwise it is reading the fetch itself).
func (h *held) extend() []jetstream.Msg {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.active == nil {
		return slices.Clone(h.kept)
	}
	for !h.srcDone && !h.reading {
		select {
		case m, ok := <-h.src:
			if !ok {
				h.srcDone = true
				continue
			}
			h.queue = append(h.queue, m)
			continue
		default:
		}
		break
	}
	ms := make([]jetstream.Msg, 0, len(h.kept)+len(h.active)+len(h.queue))
	ms = append(ms, h.kept...)
	for m := range h.active {
		ms = append(ms, m)
	}
	return append(ms, h.queue...)
}
