package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/cqrskit/cqrskit/outbox"
)

// LeaderConfig configures a Leader. The zero value means defaults.
type LeaderConfig struct {
	// KeepTimeout bounds each Lease.Keep check; a check that takes longer
	// counts as leadership lost. Defaults to 5s.
	KeepTimeout time.Duration
	// Keepalive is the leader session's server-side TCP keepalive idle time
	// and probe interval (tcp_keepalives_idle and tcp_keepalives_interval,
	// with 3 probes). It bounds how long PostgreSQL keeps the session, and
	// so the lock, after the leader's host vanishes without closing the
	// connection: about 4 x Keepalive instead of the server's default
	// (often two hours). It has no effect over a Unix socket. Defaults to
	// 10s; a negative value keeps the server's settings.
	Keepalive time.Duration
}

func (c LeaderConfig) withDefaults() (LeaderConfig, error) {
	var errs []error
	if c.KeepTimeout < 0 {
		errs = append(errs, fmt.Errorf("postgres leader config: KeepTimeout %s: must not be negative", c.KeepTimeout))
	}
	if c.Keepalive > 0 && c.Keepalive < time.Second {
		errs = append(errs, fmt.Errorf("postgres leader config: Keepalive %s: PostgreSQL counts it in whole seconds; use at least 1s, or a negative value for the server's settings", c.Keepalive))
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	if c.KeepTimeout == 0 {
		c.KeepTimeout = 5 * time.Second
	}
	if c.Keepalive == 0 {
		c.Keepalive = 10 * time.Second
	}
	return c, nil
}

// relayLockSpace is the upper half of the relay's advisory lock key ("cqrs"
// in ASCII); the lower half is the outbox table's OID. pg_locks shows them
// as classid and objid.
const relayLockSpace = 0x63717273

// relayLockKey is the relay's advisory lock key for the outbox table named
// by $1. The table's OID identifies it whatever its schema, prefix or the
// session's search_path, so two outboxes in one database never share a
// lock, and a missing table fails with undefined_table (ErrNotMigrated).
var relayLockKey = fmt.Sprintf(`((%d::bigint << 32) | $1::text::regclass::oid::bigint)`, relayLockSpace)

// Leader elects the one active outbox relay among processes sharing a
// database. It implements outbox.Leader with a session-level advisory lock
// (pg_try_advisory_lock) keyed by the outbox table. Create it with
// Store.Leader; it is safe for concurrent use.
//
// The lock lives on a connection taken from the store's *sql.DB and held,
// out of the pool, for as long as the lease: a leader counts against the
// pool's SetMaxOpenConns. No connection string is needed, and TLS, the
// dialer and credentials are whatever the DB was opened with. When that
// connection ends for any reason (the process crashes, the network fails,
// an operator runs pg_terminate_backend), PostgreSQL releases the lock and
// a standby's next TryAcquire wins. Lease.Keep checks on the same
// connection that the lock is still held, so the old leader learns it lost
// leadership at its next Keep.
//
// Session advisory locks need a session: they do not work through a
// connection pooler in transaction or statement mode (PgBouncer's
// pool_mode=transaction). Point the store's DB straight at PostgreSQL, or
// at a session-mode pool.
//
// What it does not do: fence. Between the moment the old leader's
// connection dies and its next Keep, it may finish publishing the batch in
// hand while the new leader starts on the same rows. Both publish with the
// events' IDs as message IDs, so the broker drops the duplicates, and each
// relay publishes a stream in order, so per-stream order holds.
type Leader struct {
	db    *sql.DB
	table string
	cfg   LeaderConfig
}

var _ outbox.Leader = (*Leader)(nil)

// Leader returns the relay leader election for the store's outbox. Relays
// of one outbox elect among themselves when their stores have the same
// Schema and TablePrefix on the same database. A Leader keeps no state
// between calls (each TryAcquire uses a session of its own), so one may
// serve several relays.
func (s *Store) Leader(cfg LeaderConfig) (*Leader, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Leader{db: s.db, table: s.Table("outbox"), cfg: cfg}, nil
}

// TryAcquire tries once to take the outbox's relay lock. It returns a nil
// Lease and no error when another session holds it. See outbox.Leader.
func (l *Leader) TryAcquire(ctx context.Context) (outbox.Lease, error) {
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return nil, wrap("relay leadership for "+l.table+": get a connection", err)
	}
	var (
		acquired bool
		key      int64
		pid      int
	)
	err = conn.QueryRowContext(ctx,
		`SELECT pg_try_advisory_lock(k), k, pg_backend_pid() FROM (SELECT `+relayLockKey+` AS k) AS relay`,
		l.table).Scan(&acquired, &key, &pid)
	if err != nil {
		// The lock may have been granted before the error (a cancelled
		// context): close the session rather than pool it.
		discard(conn)
		return nil, wrap("relay leadership for "+l.table+": try the advisory lock", err)
	}
	if !acquired {
		_ = conn.Close() // back to the pool; it holds nothing
		return nil, nil
	}
	if l.cfg.Keepalive > 0 {
		secs := strconv.Itoa(int(l.cfg.Keepalive / time.Second))
		if _, err := conn.ExecContext(ctx, `SELECT set_config('tcp_keepalives_idle', $1, false),
			set_config('tcp_keepalives_interval', $1, false), set_config('tcp_keepalives_count', '3', false)`, secs); err != nil {
			discard(conn) // ending the session releases the lock
			return nil, wrap("relay leadership for "+l.table+": set the session's TCP keepalive", err)
		}
	}
	return &lease{conn: conn, table: l.table, key: key, pid: pid, timeout: l.cfg.KeepTimeout}, nil
}

// lease holds the relay lock on conn until Release.
type lease struct {
	table   string
	key     int64
	pid     int // the lock session's backend, for messages and tests
	timeout time.Duration

	mu   sync.Mutex
	conn *sql.Conn // nil once released
	lost bool      // Keep failed: the session is presumed gone
}

// ErrLeaseLost is wrapped by the error of a Leader's Lease.Keep when the
// relay lock is no longer held: its session ended (PostgreSQL released the
// lock), cannot be reached, or the lease was released.
var ErrLeaseLost = errors.New("relay lease lost")

// Keep checks, on the lock's own connection, that the lock is still held.
// An error (wrapping ErrLeaseLost) means the relay must stop
// publishing. See outbox.Lease.
func (l *lease) Keep(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return fmt.Errorf("relay lock on %s: %w: the lease was released", l.table, ErrLeaseLost)
	}
	if l.lost {
		return fmt.Errorf("relay lock on %s: %w", l.table, ErrLeaseLost)
	}
	qctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	var held bool
	err := l.conn.QueryRowContext(qctx, `SELECT EXISTS (SELECT 1 FROM pg_locks
		WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
		  AND objsubid = 1 AND (classid::bigint << 32 | objid::bigint) = $1)`, l.key).Scan(&held)
	switch {
	case err != nil && ctx.Err() != nil:
		// The caller gave up; that alone says nothing about the lock (if
		// it broke the connection, the next Keep reports the loss).
		return fmt.Errorf("relay lock on %s: check the lock: %w", l.table, err)
	case err != nil:
		l.lost = true
		return fmt.Errorf("relay lock on %s: %w: the lock's connection (backend pid %d) failed, and PostgreSQL releases the lock with its session: %w",
			l.table, ErrLeaseLost, l.pid, err)
	case !held:
		l.lost = true
		return fmt.Errorf("relay lock on %s: %w: backend pid %d no longer holds the advisory lock", l.table, ErrLeaseLost, l.pid)
	}
	return nil
}

// Release unlocks and closes the lock's connection; it is not returned to
// the pool, so no lock or session setting can leak to other users of the
// DB. Releasing twice, or after Keep reported leadership lost, is a no-op.
func (l *lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return nil
	}
	conn, lost := l.conn, l.lost
	l.conn = nil
	defer discard(conn)
	if lost {
		return nil // the session is gone or going; closing it is all there is to do
	}
	// Unlock explicitly so that a standby need not wait for the server to
	// notice the closed connection.
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, l.key); err != nil {
		return fmt.Errorf("release relay leadership for %s: unlock (the connection is closed, which releases it): %w", l.table, err)
	}
	return nil
}

// discard closes conn's session instead of returning it to the pool.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}
