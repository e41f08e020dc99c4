package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cqrskit/cqrskit/store"

	"github.com/cqrskit/cqrskit/outbox"
)

// outboxReader reports on the outbox (store.Admin on its relays).
type outboxReader interface {
	Stats(ctx context.Context) (outbox.Stats, error)
	outbox.ParkedStore
}

// outboxStatus is the JSON output of outbox status.
type outboxStatus struct {
	Backlog          int64     `json:"backlog"`
	Parked           int64     `json:"parked"`
	OldestAt         time.Time `json:"oldest_at,omitzero"`
	OldestAgeSeconds float64   `json:"oldest_age_seconds"`
	// Relays lists the relays' leases; none active means no relay
	// publishes.
	Relays []store.RelayLease `json:"relays"`
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
	return group("outbox", "Inspect the transactional outbox", status, a.parkedCommand())
}

// parkedJSON is a parked outbox row in JSON output.
type parkedJSON struct {
	OutboxID int64     `json:"outbox_id"`
	Reason   string    `json:"reason"`
	ParkedAt time.Time `json:"parked_at"`
	Event    eventJSON `json:"event"`
}

// parkedPage is the JSON output of outbox parked list.
type parkedPage struct {
	Parked []parkedJSON `json:"parked"`
	// NextAfter is set when more follow: pass it to --after.
	NextAfter int64 `json:"next_after,omitempty"`
}

func (a *app) parkedCommand() *cobra.Command {
	var (
		after int64
		limit int
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List parked outbox rows: events the broker rejected for good, oldest first",
		Long: `List the outbox rows the relay parked because the broker rejected their
message for good (too large for the server or stream, a topic it refuses),
with the broker's error. Each parked row holds back the later events of its
stream, so that the stream's order holds; every other stream keeps flowing.
Fix the cause (raise the limit, fix the topic), then "retry" the row; or
"discard" it to let its stream go on without it.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return usagef("--limit %d: must be at least 1", limit)
			}
			return a.withBackend(cmd.Context(), needTables, func(b backend) error {
				return a.listParked(cmd.Context(), b, after, limit)
			})
		},
	}
	list.Flags().Int64Var(&after, "after", 0, "list parked rows with an outbox ID above this one")
	list.Flags().IntVar(&limit, "limit", 100, "list at most this many")

	retry := &cobra.Command{
		Use:   "retry OUTBOX_ID...",
		Short: "Put parked rows back into the outbox, first in their streams",
		Long: `Move each parked row back into the outbox under its old ID, so the relay
publishes it again before the rest of its stream. If the broker rejects it
again, the relay parks it again.`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ids, err := parseIDs(argv)
			if err != nil {
				return err
			}
			return a.withBackend(cmd.Context(), needTables, func(b backend) error {
				n, err := b.RetryParked(cmd.Context(), ids)
				return a.reportParked("put back into the outbox", ids, n, err)
			})
		},
	}
	discard := &cobra.Command{
		Use:   "discard OUTBOX_ID...",
		Short: "Delete parked rows: their events are never published, their streams go on",
		Long: `Delete each parked row. Its event stays in the event store but is never
published, so consumers never see it; the later events of its stream are
published again. Use it only for an event no consumer may need.`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ids, err := parseIDs(argv)
			if err != nil {
				return err
			}
			return a.withBackend(cmd.Context(), needTables, func(b backend) error {
				n, err := b.DiscardParked(cmd.Context(), ids)
				return a.reportParked("discarded", ids, n, err)
			})
		},
	}
	return group("parked", "List, retry or discard outbox rows the broker rejected for good", list, retry, discard)
}

func (a *app) listParked(ctx context.Context, b backend, after int64, limit int) error {
	rows, err := b.Parked(ctx, after, limit+1)
	if err != nil {
		return err
	}
	page := parkedPage{Parked: []parkedJSON{}}
	if len(rows) > limit {
		rows = rows[:limit]
		page.NextAfter = rows[limit-1].ID
	}
	for _, p := range rows {
		page.Parked = append(page.Parked, parkedJSON{OutboxID: p.ID, Reason: p.Reason, ParkedAt: p.ParkedAt, Event: toEventJSON(p.Event)})
	}
	if a.json() {
		return writeJSON(a.stdout, page)
	}
	if len(rows) == 0 {
		fmt.Fprintln(a.stdout, "no parked outbox rows")
		return nil
	}
	tw := newTable(a.stdout)
	row(tw, "OUTBOX ID", "PARKED", "STREAM", "VERSION", "TYPE", "EVENT ID", "REASON")
	for _, p := range rows {
		row(tw, p.ID, formatTime(p.ParkedAt), p.Event.StreamID, p.Event.Version, p.Event.Type, p.Event.ID, p.Reason)
	}
	if page.NextAfter != 0 {
		row(tw, fmt.Sprintf("(more: --after %d)", page.NextAfter))
	}
	return tw.Flush()
}

func (a *app) reportParked(what string, ids []int64, n int, err error) error {
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%s %d of %d parked rows\n", what, n, len(ids))
	if n < len(ids) {
		return fmt.Errorf("%d of the given outbox IDs are not parked (see cqrskit outbox parked list)", len(ids)-n)
	}
	return nil
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
	s := outboxStatus{Backlog: st.Backlog, Parked: st.Parked, OldestAt: st.OldestAt, Relays: leases}
	if s.Relays == nil {
		s.Relays = []store.RelayLease{}
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
	if s.Parked > 0 {
		row(tw, "parked", fmt.Sprintf("%d rejected by the broker; their streams wait (cqrskit outbox parked list)", s.Parked))
	} else {
		row(tw, "parked", 0)
	}
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
