package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cqrskit/cqrskit/outbox"
)

// outboxReader reports on the outbox and its relay.
type outboxReader interface {
	Stats(ctx context.Context) (outbox.Stats, error)
	// RelayLeases returns what the store knows of the relays' leadership:
	// the session holding the advisory lock (PostgreSQL), the lease rows
	// (SQLite), expired ones included.
	RelayLeases(ctx context.Context) ([]relayLease, error)
}

// relayLease describes a relay's leadership.
type relayLease struct {
	// Holder names the relay: the lease owner (SQLite) or the database
	// session holding the advisory lock (PostgreSQL).
	Holder string `json:"holder"`
	// Active is false for an expired SQLite lease: its relay stopped
	// keeping it, and no relay publishes under that name.
	Active bool `json:"active"`
	// PostgreSQL: the lock session's details.
	PID          int       `json:"pid,omitempty"`
	Application  string    `json:"application,omitempty"`
	ClientAddr   string    `json:"client_addr,omitempty"`
	User         string    `json:"user,omitempty"`
	SessionStart time.Time `json:"session_start,omitzero"`
	// SQLite: the lease's name, and when it runs out unless kept.
	Name      string    `json:"name,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// outboxStatus is the JSON output of outbox status.
type outboxStatus struct {
	Backlog          int64     `json:"backlog"`
	OldestAt         time.Time `json:"oldest_at,omitzero"`
	OldestAgeSeconds float64   `json:"oldest_age_seconds"`
	// Relays lists the relays' leases; none active means no relay
	// publishes.
	Relays []relayLease `json:"relays"`
}

func (a *app) outboxCommand() *cobra.Command {
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the unpublished backlog, its oldest age and the active relay",
		Long: `Show how many events wait in the outbox to be published, how long the
oldest has waited, and which relay holds the lease: in PostgreSQL the session
holding the relay's advisory lock (pid, application_name, client address), in
SQLite the owner of the unexpired lease row. No active relay with a growing
backlog means nothing publishes.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withBackend(cmd.Context(), needTables, func(b backend) error {
				return a.outboxStatus(cmd.Context(), b)
			})
		},
	}
	return group("outbox", "Inspect the transactional outbox", status)
}

func (a *app) outboxStatus(ctx context.Context, b backend) error {
	st, err := b.Stats(ctx)
	if err != nil {
		return err
	}
	leases, err := b.RelayLeases(ctx)
	if err != nil {
		return err
	}
	s := outboxStatus{Backlog: st.Backlog, OldestAt: st.OldestAt, Relays: leases}
	if s.Relays == nil {
		s.Relays = []relayLease{}
	}
	var age time.Duration
	if !st.OldestAt.IsZero() {
		age = max(time.Since(st.OldestAt), 0)
		s.OldestAgeSeconds = age.Seconds()
	}
	if a.json() {
		return writeJSON(a.stdout, s)
	}
	tw := newTable(a.stdout)
	row(tw, "backlog", s.Backlog)
	if s.Backlog > 0 {
		row(tw, "oldest", fmt.Sprintf("%s ago (%s)", formatAge(age), formatTime(s.OldestAt)))
	} else {
		row(tw, "oldest", "-")
	}
	active := 0
	for _, l := range s.Relays {
		switch {
		case l.PID != 0:
			row(tw, "relay", fmt.Sprintf("%s (advisory lock held)", l.Holder))
		case l.Active:
			row(tw, "relay", fmt.Sprintf("%s (lease %q, expires in %s)", l.Holder, l.Name, formatAge(time.Until(l.ExpiresAt))))
		default:
			row(tw, "expired lease", fmt.Sprintf("%s (lease %q, expired %s ago: the relay stopped)", l.Holder, l.Name, formatAge(time.Since(l.ExpiresAt))))
		}
		if l.Active {
			active++
		}
	}
	if active == 0 {
		row(tw, "relay", "none active: nothing publishes the outbox")
	}
	return tw.Flush()
}
