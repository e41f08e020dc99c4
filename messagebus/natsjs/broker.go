package natsjs

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cqrskit/cqrskit/messagebus"
	"github.com/cqrskit/cqrskit/messagebus/internal/consume"
)

// maxPending bounds unacknowledged async publishes per connection; a
// Publish beyond it waits for acks to free slots.
const maxPending = 4096

// Broker is a messagebus.Broker on NATS JetStream. It is safe for
// concurrent use.
type Broker struct {
	cfg     Config
	nc      *nats.Conn
	ownConn bool
	js      jetstream.JetStream
	url     string // redacted, for errors

	maxMsgSize int // the stream's max_msg_size; 0: none
	subs       consume.Registry
	closed     atomic.Bool
}

var _ messagebus.Broker = (*Broker)(nil)

// New connects (unless cfg.Conn is set) and provisions the stream. ctx
// bounds both.
func New(ctx context.Context, cfg Config) (*Broker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("natsjs: invalid config: %w", err)
	}
	b := &Broker{cfg: cfg, nc: cfg.Conn}
	if b.nc == nil {
		b.url = redact(cfg.URL)
		nc, err := b.connect(ctx)
		if err != nil {
			return nil, err
		}
		b.nc, b.ownConn = nc, true
	} else {
		b.url = b.nc.ConnectedUrlRedacted()
	}
	js, err := jetstream.New(b.nc,
		jetstream.WithPublishAsyncMaxPending(maxPending),
		jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout))
	if err != nil {
		b.closeConn()
		return nil, fmt.Errorf("natsjs: jetstream on %s: %w", b.url, err)
	}
	b.js = js
	if err := b.provision(ctx); err != nil {
		b.closeConn()
		return nil, err
	}
	return b, nil
}

func (b *Broker) connect(ctx context.Context) (*nats.Conn, error) {
	log := b.cfg.Logger
	opts := []nats.Option{
		nats.Name("cqrskit"),
		nats.Timeout(b.cfg.ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		// Fail publishes during an outage at once instead of buffering
		// them for an ack that cannot come.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if !nc.IsClosed() {
				log.Warn("natsjs: disconnected; reconnecting", "url", b.url, "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("natsjs: reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			log.Warn("natsjs: asynchronous error", "url", b.url, "error", err)
		}),
	}
	opts = append(opts, b.cfg.Options...)
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(b.cfg.URL, opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("natsjs: connect to %s: %w: %w", b.url, r.err, messagebus.ErrUnavailable)
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("natsjs: connect to %s: %w", b.url, ctx.Err())
	}
}

// provision creates the stream or brings an existing one up to what the
// broker needs, and reads its message size limit.
func (b *Broker) provision(ctx context.Context) error {
	all := b.cfg.SubjectPrefix + ".>"
	s, err := b.js.Stream(ctx, b.cfg.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound) && b.cfg.UseExistingStream:
		return fmt.Errorf("natsjs: stream %s not found on %s (UseExistingStream is set): %w", b.cfg.Stream, b.url, err)
	case errors.Is(err, jetstream.ErrStreamNotFound):
		s, err = b.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        b.cfg.Stream,
			Description: "cqrskit message bus",
			Subjects:    []string{all},
			Storage:     b.cfg.Storage,
			Replicas:    b.cfg.Replicas,
			Duplicates:  b.cfg.DuplicateWindow,
			MaxAge:      b.cfg.MaxAge,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // created concurrently
			s, err = b.js.Stream(ctx, b.cfg.Stream)
		}
		if err != nil {
			return fmt.Errorf("natsjs: create stream %s on %s: %w", b.cfg.Stream, b.url, b.apiErr(err))
		}
	case err != nil:
		return fmt.Errorf("natsjs: look up stream %s on %s: %w", b.cfg.Stream, b.url, b.apiErr(err))
	}
	sc := s.CachedInfo().Config
	covered := false
	for _, subj := range sc.Subjects {
		covered = covered || subjectCovers(subj, all)
	}
	if b.cfg.UseExistingStream {
		if !covered {
			return fmt.Errorf("natsjs: stream %s captures %v, not %s (UseExistingStream is set)", b.cfg.Stream, sc.Subjects, all)
		}
	} else if !covered || sc.Duplicates < b.cfg.DuplicateWindow {
		// Raise a shorter window; never lower one an operator made
		// longer.
		if !covered {
			sc.Subjects = append(sc.Subjects, all)
		}
		sc.Duplicates = max(sc.Duplicates, b.cfg.DuplicateWindow)
		if s, err = b.js.UpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("natsjs: update stream %s on %s (subjects %v, duplicate window %s): %w",
				b.cfg.Stream, b.url, sc.Subjects, sc.Duplicates, b.apiErr(err))
		}
		sc = s.CachedInfo().Config
	}
	if sc.MaxMsgSize > 0 {
		b.maxMsgSize = int(sc.MaxMsgSize)
	}
	if sc.Duplicates < b.cfg.RetryHorizon {
		b.cfg.Logger.Warn("natsjs: the stream's duplicate window is shorter than the retry horizon; a message republished after a lost ack may be stored twice",
			"stream", b.cfg.Stream, "url", b.url, "duplicate_window", sc.Duplicates, "retry_horizon", b.cfg.RetryHorizon)
	}
	return nil
}

// Close stops every subscription, flushes acknowledgements and closes the
// connection if the broker opened it. Later calls fail with ErrClosed.
func (b *Broker) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.subs.Close()
	b.closeConn()
	return nil
}

func (b *Broker) closeConn() {
	if !b.ownConn {
		return
	}
	_ = b.nc.FlushTimeout(2 * time.Second)
	b.nc.Close()
}

// apiErr marks connection failures as messagebus.ErrUnavailable.
func (b *Broker) apiErr(err error) error {
	if isUnavailable(err) {
		return fmt.Errorf("%w: %w", err, messagebus.ErrUnavailable)
	}
	return err
}

func isUnavailable(err error) bool {
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected) || errors.Is(err, nats.ErrReconnectBufExceeded) ||
		errors.Is(err, nats.ErrConnectionDraining) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, jetstream.ErrNoHeartbeat)
}

// redact removes passwords and tokens from server URLs.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if u, err := url.Parse(p); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				p = u.Redacted()
			} else {
				u.User = url.User("xxxxx")
				p = u.String()
			}
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}
