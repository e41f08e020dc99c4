package memory

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/cqrskit/cqrskit/driver"
	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/internal/consume"
	"github.com/cqrskit/cqrskit/messagebus/internal/pubbatch"
)

// Broker is an in-memory messagebus.Broker. It is safe for concurrent use.
type Broker struct {
	cfg  Config
	subs consume.Registry

	mu     sync.Mutex
	closed bool
	topics map[string]*topic
	groups map[groupKey]*group
	seen   map[string]time.Time // ID -> when stored
	ids    []seenID             // the same, oldest first, for expiry
}

type topic struct {
	msgs    []stored
	changed chan struct{} // closed and replaced when a message is stored
}

type stored struct {
	msg messagebus.Message
	at  time.Time
}

type seenID struct {
	id string
	at time.Time
}

type groupKey struct{ topic, group string }

type group struct {
	next     int           // index of the next message to deliver
	attempts int           // deliveries of msgs[next] so far
	active   chan struct{} // holds a token while a subscription consumes
}

var _ messagebus.Broker = (*Broker)(nil)

// New returns an empty broker.
func New(cfg Config) (*Broker, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Broker{
		cfg:    cfg.withDefaults(),
		topics: map[string]*topic{},
		groups: map[groupKey]*group{},
		seen:   map[string]time.Time{},
	}, nil
}

// Publish implements messagebus.Publisher. Messages are stored in call
// order; a message whose ID was stored within the duplicate window is
// acknowledged and dropped.
func (b *Broker) Publish(ctx context.Context, msgs ...messagebus.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	batch := pubbatch.New(msgs)
	if err := ctx.Err(); err != nil {
		batch.FailAll(err)
		return batch.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		batch.FailAll(messagebus.ErrClosed)
		return batch.Err()
	}
	now := time.Now()
	b.forget(now)
	for i, m := range msgs {
		if !batch.Prepare(i) {
			continue
		}
		if size := m.Size(); size > b.cfg.MaxMessageBytes {
			batch.Reject(i, &messagebus.MessageTooLargeError{Size: size, Limit: b.cfg.MaxMessageBytes, What: "memory.Config.MaxMessageBytes"})
			continue
		}
		if _, dup := b.seen[m.ID]; dup {
			continue
		}
		b.seen[m.ID] = now
		b.ids = append(b.ids, seenID{m.ID, now})
		t := b.topic(m.Topic)
		t.msgs = append(t.msgs, stored{msg: clone(m), at: now})
		close(t.changed)
		t.changed = make(chan struct{})
	}
	return batch.Err()
}

// forget drops IDs older than the duplicate window. b.mu is held.
func (b *Broker) forget(now time.Time) {
	n := 0
	for n < len(b.ids) && now.Sub(b.ids[n].at) >= b.cfg.DuplicateWindow {
		delete(b.seen, b.ids[n].id)
		n++
	}
	b.ids = slices.Delete(b.ids, 0, n)
}

// topic returns the named topic, creating it. b.mu is held.
func (b *Broker) topic(name string) *topic {
	t := b.topics[name]
	if t == nil {
		t = &topic{changed: make(chan struct{})}
		b.topics[name] = t
	}
	return t
}

// Subscribe implements messagebus.Subscriber. One subscription of a group
// consumes at a time, in publish order; the others wait as standbys and
// take over when it stops. Failed messages are retried in place, so the
// order holds across retries too.
func (b *Broker) Subscribe(ctx context.Context, topicName, groupName string, h messagebus.Handler, opts ...messagebus.SubscribeOption) (messagebus.Subscription, error) {
	if err := driver.ValidateSubscribe(topicName, groupName, h); err != nil {
		return nil, err
	}
	sc, err := driver.NewSubscribeConfig(messagebus.SubscribeConfig{
		MaxDeliveries: b.cfg.MaxDeliveries,
		RetryDelay:    b.cfg.RetryDelay,
	}, opts...)
	if err != nil {
		return nil, err
	}
	policy := &consume.Policy{SubscribeConfig: sc, Topic: topicName, Group: groupName, Logger: b.cfg.Logger}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, messagebus.ErrClosed
	}
	t := b.topic(topicName)
	k := groupKey{topicName, groupName}
	g := b.groups[k]
	if g == nil {
		g = &group{active: make(chan struct{}, 1)}
		b.groups[k] = g
	}
	b.mu.Unlock()

	sub := consume.Start(ctx, func(ctx context.Context, stop <-chan struct{}) error {
		select {
		case g.active <- struct{}{}:
		case <-stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-g.active }()
		return b.consume(ctx, stop, t, g, policy, h)
	})
	if !b.subs.Add(sub) {
		sub.Close()
		return nil, messagebus.ErrClosed
	}
	return sub, nil
}

func (b *Broker) consume(ctx context.Context, stop <-chan struct{}, t *topic, g *group, p *consume.Policy, h messagebus.Handler) error {
	for {
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		b.mu.Lock()
		if g.next >= len(t.msgs) {
			changed := t.changed
			b.mu.Unlock()
			select {
			case <-changed:
				continue
			case <-stop:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if p.Concurrency > 1 {
			b.consumeWindow(ctx, stop, t, g, p, h)
			continue
		}
		s := t.msgs[g.next]
		g.attempts++
		d := messagebus.Delivery{Message: clone(s.msg), Attempt: g.attempts, PublishedAt: s.at}
		b.mu.Unlock()

		outcome, attempt := p.Deliver(ctx, stop, h, d)

		b.mu.Lock()
		if outcome == consume.Interrupted {
			g.attempts = attempt
		} else {
			g.next++
			g.attempts = 0
		}
		b.mu.Unlock()
	}
}

// window is the most messages consumeWindow hands to the lanes at once.
const window = 256

// consumeWindow hands the next messages (up to window) to p.Concurrency
// lanes by key and moves the group past those handled before the first
// one that was not (interrupted), which is delivered again. Called with
// b.mu held; returns without it.
func (b *Broker) consumeWindow(ctx context.Context, stop <-chan struct{}, t *topic, g *group, p *consume.Policy, h messagebus.Handler) {
	first := g.next
	stored := slices.Clone(t.msgs[first:min(len(t.msgs), first+window)])
	headAttempts := g.attempts
	b.mu.Unlock()

	handled := make([]bool, len(stored))
	attempts := make([]int, len(stored))
	lanes := consume.NewLanes(p.Concurrency, len(stored))
	for i, s := range stored {
		attempt := 1
		if i == 0 {
			attempt = headAttempts + 1
		}
		lanes.Go(s.msg.Key, func() {
			select {
			case <-stop:
				attempts[i] = attempt - 1 // not delivered
				return
			case <-ctx.Done():
				attempts[i] = attempt - 1
				return
			default:
			}
			d := messagebus.Delivery{Message: clone(s.msg), Attempt: attempt, PublishedAt: s.at}
			outcome, last := p.Deliver(ctx, stop, h, d)
			handled[i], attempts[i] = outcome != consume.Interrupted, last
		})
	}
	lanes.Wait()

	n := 0
	for n < len(handled) && handled[n] {
		n++
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	g.next, g.attempts = first+n, 0
	if n < len(handled) {
		g.attempts = attempts[n] // the later ones handled are delivered again
	}
}

// Close stops every subscription; later calls fail with ErrClosed.
// Published messages and group positions are discarded with the broker.
func (b *Broker) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.subs.Close()
	return nil
}

func clone(m messagebus.Message) messagebus.Message {
	m.Payload = slices.Clone(m.Payload)
	m.Headers = maps.Clone(m.Headers)
	return m
}
