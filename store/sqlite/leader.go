package sqlite

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cqrskit/cqrskit/outbox"
)

// ErrLeaseLost is returned by a lease's Keep when another relay took the
// lease over (after it expired) or it was released.
var ErrLeaseLost = errors.New("relay lease lost")

// LeaderConfig configures a Leader. The zero value means defaults.
type LeaderConfig struct {
	// Name names the lease; the relays of one outbox share it. Defaults to
	// "outbox".
	Name string
	// TTL is how long leadership lasts without Keep; then a standby may
	// take over. The relay renews the lease when half of it has passed and
	// cuts a publish short a tenth of TTL before it runs out, so any TTL
	// above the relay's keep interval (half its StandbyInterval) is safe; a
	// longer one lets a batch publish for longer, a shorter one fails over
	// sooner. Defaults to 5s.
	TTL time.Duration
	// Owner identifies this relay in the lease row. It must differ between
	// processes; a process restarting with the Owner it had takes its
	// unexpired lease back at once. Defaults to host:pid:random.
	Owner string
}

// Leader elects one active outbox relay among the processes sharing a
// database file, with a lease row in <prefix>relay_leases: the relay that
// holds an unexpired lease publishes; the others are standbys and take the
// lease once it expires. It implements outbox.Leader; one Leader value
// serves one relay.
//
// Leases are timed by each process's clock; processes sharing a SQLite file
// share a machine, hence a clock. A lease is an outbox.ExpiringLease: the
// relay bounds each publish to end before the lease runs out and renews it
// (Keep) before a publish or delete once half of it has passed, so a relay
// that was paused past its lease (a stopped process) finds out at that Keep
// and stops before it publishes or deletes again.
type Leader struct {
	s     *Store
	name  string
	owner string
	ttl   time.Duration

	mu   sync.Mutex
	held bool
}

var _ outbox.Leader = (*Leader)(nil)

// Leader returns a relay Leader on the store's database.
func (s *Store) Leader(cfg LeaderConfig) (*Leader, error) {
	if cfg.TTL < 0 {
		return nil, fmt.Errorf("sqlite leader: TTL %s: must not be negative", cfg.TTL)
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		cfg.Owner = fmt.Sprintf("%s:%d:%s", host, os.Getpid(), uuid.NewString()[:8])
	}
	return &Leader{
		s:     s,
		name:  cmp.Or(cfg.Name, "outbox"),
		owner: cfg.Owner,
		ttl:   cmp.Or(cfg.TTL, 5*time.Second),
	}, nil
}

// Owner returns the ID this leader writes into the lease row.
func (l *Leader) Owner() string { return l.owner }

// TryAcquire takes the lease if it is free, expired, or already this
// owner's. It returns a nil Lease and no error while another relay holds
// it, or while this Leader's previous lease is not released.
func (l *Leader) TryAcquire(ctx context.Context) (outbox.Lease, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held {
		return nil, nil
	}
	table := l.s.prefix + "relay_leases"
	now := time.Now()
	n, err := l.s.execWrite(ctx, "INSERT INTO "+table+" (name, owner, expires_at) VALUES (?, ?, ?)"+
		" ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at"+
		" WHERE "+table+".expires_at <= ? OR "+table+".owner = excluded.owner",
		l.name, l.owner, now.Add(l.ttl).UnixNano(), now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("acquire relay lease %s: %w", l.name, l.s.explain(ctx, l.s.db, table, err))
	}
	if n == 0 {
		return nil, nil
	}
	l.held = true
	return &lease{l: l, validUntil: now.Add(l.ttl)}, nil
}

type lease struct {
	l          *Leader
	released   bool
	mu         sync.Mutex
	validUntil time.Time // by this process's clock, taken before the write
}

var _ outbox.ExpiringLease = (*lease)(nil)

// ValidUntil is when the lease runs out unless kept: until then no other
// relay can take it over.
func (ls *lease) ValidUntil() time.Time {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.validUntil
}

// Keep extends the lease by TTL, failing with ErrLeaseLost if it is no
// longer this owner's.
func (ls *lease) Keep(ctx context.Context) error {
	l := ls.l
	table := l.s.prefix + "relay_leases"
	now := time.Now()
	n, err := l.s.execWrite(ctx, "UPDATE "+table+" SET expires_at = ? WHERE name = ? AND owner = ?",
		now.Add(l.ttl).UnixNano(), l.name, l.owner)
	if err != nil {
		return fmt.Errorf("keep relay lease %s: %w", l.name, l.s.explain(ctx, l.s.db, table, err))
	}
	if n == 0 {
		return fmt.Errorf("keep relay lease %s as %s: %w", l.name, l.owner, ErrLeaseLost)
	}
	ls.mu.Lock()
	ls.validUntil = now.Add(l.ttl)
	ls.mu.Unlock()
	return nil
}

// Release gives the lease up, if it is still this owner's.
func (ls *lease) Release(ctx context.Context) error {
	l := ls.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if ls.released {
		return nil
	}
	// Even if the delete fails this Leader may try again: the row, if it
	// is still there, names this owner, and TryAcquire takes it back.
	ls.released = true
	l.held = false
	table := l.s.prefix + "relay_leases"
	if _, err := l.s.execWrite(ctx, "DELETE FROM "+table+" WHERE name = ? AND owner = ?", l.name, l.owner); err != nil {
		return fmt.Errorf("release relay lease %s (it expires in at most %s): %w", l.name, l.ttl, l.s.explain(ctx, l.s.db, table, err))
	}
	return nil
}
