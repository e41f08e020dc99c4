package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5"

	"github.com/cqrskit/cqrskit/outbox"
	"github.com/cqrskit/cqrskit/projection"
)

// Timings of a Listener's connection.
const (
	// listenerHealthInterval is how long a listener waits for a
	// notification before it pings its connection, so that a connection
	// that died silently (a dropped network path) is replaced.
	listenerHealthInterval = 30 * time.Second
	// listenerPingTimeout bounds that ping.
	listenerPingTimeout = 5 * time.Second
	// listenerConnectTimeout bounds connecting and LISTEN, unless the
	// connection string's connect_timeout is longer.
	listenerConnectTimeout = 10 * time.Second
	// listenerMinBackoff and listenerMaxBackoff bound the wait before
	// reconnecting.
	listenerMinBackoff = 100 * time.Millisecond
	listenerMaxBackoff = 5 * time.Second
	// listenerSettleInterval is how often a listener checks whether the
	// transactions that were running at a notification have ended (see
	// Listener, "Coalesced notifications"); listenerSettleLimit is how long
	// it follows one before leaving it to the relays' polling.
	listenerSettleInterval = 5 * time.Millisecond
	listenerSettleLimit    = 10 * time.Second
)

// Listener wakes outbox relays when outbox rows commit: it implements
// outbox.Notifier by LISTENing on the store's NotifyChannel. Create it with
// Store.Listener; it is safe for concurrent use.
//
// LISTEN needs a connection of its own that stays open between
// notifications, which database/sql cannot provide, so a Listener opens
// one pgx connection from a connection string: the first Listen call opens
// it, and it is closed when the contexts of all Listen calls have ended.
// Every Listen call of one Listener shares that connection.
//
// When the connection fails, the Listener reconnects with exponential
// backoff (100ms to 5s), logging each failure, and sends every subscriber a
// wake-up once it is listening again, because notifications sent meanwhile
// are lost. A connection that has been silent for 30s is pinged, so one
// that died without a word is replaced too.
//
// # Coalesced notifications
//
// The store coalesces notifications (see the package documentation): a
// transaction that commits while another is committing its notification
// sends none, and if it finishes committing after the relay has read the
// outbox, nothing would wake the relay for its rows. So on every
// notification the Listener first notes which transactions are in progress
// (pg_snapshot_xip of its current snapshot; a skipped committer is among
// them), then wakes the relays, then checks every 5ms which of those have
// ended and wakes the relays again when some have. A committed row thus
// waits for no poll interval, unless its transaction takes longer than 10s
// to commit after the notification. A relay still polls slowly as the
// fallback for a lost connection, as outbox.Relay does.
//
// Every append writes outbox rows, so a Listener also serves as a
// projection.Notifier. There the wake-up is even less of a promise:
// ReadAll returns a committed event only once every older transaction has
// ended (see "Reading the global log without gaps"), so a projection
// woken while a long transaction runs finds nothing new and must look
// again later.
type Listener struct {
	connConfig *pgx.ConnConfig
	channel    string
	log        *slog.Logger

	mu   sync.Mutex
	subs map[chan struct{}]struct{}
	stop context.CancelFunc // ends the running connection loop; nil when none runs
	// loops tracks running connection loops, for tests.
	loops sync.WaitGroup
	// pid is the backend pid of the listening connection, 0 while none.
	pid atomic.Uint32
}

var (
	_ outbox.Notifier     = (*Listener)(nil)
	_ projection.Notifier = (*Listener)(nil)
)

// Listener returns a Notifier for the store's NotifyChannel that connects
// with connString, a PostgreSQL URL or key=value string naming the
// store's database (a *sql.DB does not reveal how it connects). It only
// parses connString; the connection is opened by the first Listen.
//
// Connect directly or through a session-mode pool: LISTEN does not work
// through a pooler in transaction mode.
func (s *Store) Listener(connString string) (*Listener, error) {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("postgres listener: parse connection string: %w", err)
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "cqrskit outbox listener"
	}
	return &Listener{connConfig: cfg, channel: s.NotifyChannel(), log: s.log, subs: map[chan struct{}]struct{}{}}, nil
}

// Listen returns a channel that receives a value after new outbox rows
// commit, until ctx ends. Values coalesce: a receiver that falls behind
// finds one pending value, and the Listener never blocks on it. The
// channel is not closed. Listen opens the Listener's connection in the
// background if it is not open yet; a connection failure is logged and
// retried, not returned. See outbox.Notifier.
func (l *Listener) Listen(ctx context.Context) (<-chan struct{}, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := make(chan struct{}, 1)
	l.mu.Lock()
	l.subs[c] = struct{}{}
	if l.stop == nil {
		// The loop serves every subscriber, so it ends with the last one
		// (below), not with this ctx.
		lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		l.stop = cancel
		l.loops.Go(func() { l.run(lctx) })
	}
	l.mu.Unlock()
	context.AfterFunc(ctx, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.subs, c)
		if len(l.subs) == 0 && l.stop != nil {
			l.stop()
			l.stop = nil
		}
	})
	return c, nil
}

// wake signals every subscriber without blocking.
func (l *Listener) wake() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.subs {
		select {
		case c <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// run keeps a listening connection open until ctx ends.
func (l *Listener) run(ctx context.Context) {
	bo := &backoff.ExponentialBackOff{
		InitialInterval: listenerMinBackoff, MaxInterval: listenerMaxBackoff,
		RandomizationFactor: 0.2, Multiplier: 2,
	}
	bo.Reset()
	for {
		listening, err := l.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		if listening >= listenerMaxBackoff {
			bo.Reset() // it worked for a while: retry soon
		}
		wait := bo.NextBackOff()
		l.log.Warn("outbox listener: no connection; relays fall back to polling until it is back",
			"channel", l.channel, "err", err, "retry_in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// listen connects, LISTENs and wakes subscribers on every notification
// until the connection fails or ctx ends. It returns how long it was
// listening and why it stopped.
func (l *Listener) listen(ctx context.Context) (time.Duration, error) {
	cctx, cancel := context.WithTimeout(ctx, max(listenerConnectTimeout, l.connConfig.ConnectTimeout))
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, l.connConfig)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(cctx, "LISTEN "+pgx.Identifier{l.channel}.Sanitize()); err != nil {
		return 0, fmt.Errorf("listen on channel %s: %w", l.channel, err)
	}
	cancel()
	since := time.Now()
	l.pid.Store(conn.PgConn().PID())
	defer l.pid.Store(0)
	// Rows may have committed while nobody listened.
	l.wake()
	var s settling
	for {
		wait := listenerHealthInterval
		if s.active() {
			wait = listenerSettleInterval
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		_, err := conn.WaitForNotification(wctx)
		timedOut := wctx.Err() != nil
		cancel()
		switch {
		case err == nil:
			// Note the running transactions before waking: one that ends
			// after the relays' read is then followed below.
			if err := s.track(ctx, conn); err != nil {
				return time.Since(since), err
			}
			l.wake()
		case ctx.Err() != nil:
			return time.Since(since), ctx.Err()
		case timedOut && errors.Is(err, context.DeadlineExceeded) && s.active():
			ended, err := s.check(ctx, conn)
			if err != nil {
				return time.Since(since), err
			}
			if ended {
				l.wake()
			}
		case timedOut && errors.Is(err, context.DeadlineExceeded):
			// Quiet for a while: make sure the connection is still there.
			// A notification arriving during the ping is kept by pgx for
			// the next WaitForNotification.
			pctx, cancel := context.WithTimeout(ctx, listenerPingTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				return time.Since(since), fmt.Errorf("health check: %w", err)
			}
		default:
			return time.Since(since), fmt.Errorf("wait for notifications: %w", err)
		}
	}
}

// settling follows the transactions that were in progress at a
// notification until they end (see Listener, "Coalesced notifications").
type settling struct {
	xids  []string // xid8 values, as text
	since time.Time
}

func (s *settling) active() bool { return len(s.xids) > 0 }

// track follows the transactions in progress now.
func (s *settling) track(ctx context.Context, conn *pgx.Conn) error {
	var xids []string
	if err := conn.QueryRow(ctx, `SELECT coalesce(array_agg(x::text), '{}') FROM pg_snapshot_xip(pg_current_snapshot()) AS x`).Scan(&xids); err != nil {
		return fmt.Errorf("list the transactions in progress: %w", err)
	}
	// The relays' read after this wake-up sees every transaction that
	// ended before now, so only the ones running now need following.
	if len(xids) > 0 && !s.active() {
		s.since = time.Now()
	}
	s.xids = xids
	return nil
}

// check drops the followed transactions that have ended and reports
// whether any had.
func (s *settling) check(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var running []string
	if err := conn.QueryRow(ctx, `SELECT coalesce(array_agg(x), '{}') FROM unnest($1::text[]) AS x
		WHERE pg_xact_status(x::xid8) = 'in progress'`, s.xids).Scan(&running); err != nil {
		return false, fmt.Errorf("check the transactions in progress: %w", err)
	}
	ended := len(running) < len(s.xids)
	s.xids = running
	if s.active() && time.Since(s.since) > listenerSettleLimit {
		s.xids = nil // long transactions: the relays' polling covers them
	}
	return ended, nil
}
