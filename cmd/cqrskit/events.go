package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cqrskit/cqrskit/event"
)

func (a *app) eventsCommand() *cobra.Command {
	var (
		from   string
		follow bool
		poll   time.Duration
		limit  int
		batch  int
	)
	tail := &cobra.Command{
		Use:   "tail",
		Short: "Print the global log in commit order, optionally following it",
		Long: `Print events of the global log in the order readers see them, one line
each (with --output json, one JSON object per line). Reading is gap-safe:
an event whose transaction commits late is printed when it commits, never
skipped. In PostgreSQL that means an event shows up only once every
transaction started before it has ended.

--from takes "start" (the default), "end" (only events from now on) or a
cursor as printed in the first column (POSITION in SQLite, TX:POSITION in
PostgreSQL); printing starts after it. Without --follow the command stops
when it has caught up and prints the next cursor to stderr; with --follow
it polls for new events until interrupted (Ctrl-C exits 0).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case poll <= 0:
				return usagef("--poll %s: must be positive", poll)
			case batch < 1:
				return usagef("--batch %d: must be at least 1", batch)
			case limit < 0:
				return usagef("--limit %d: must not be negative", limit)
			}
			start, err := a.parseFrom(from)
			if err != nil {
				return err
			}
			return a.withBackend(cmd.Context(), needTables, func(b backend) error {
				if from == "end" {
					if start, err = b.LiveCursor(cmd.Context()); err != nil {
						return err
					}
				}
				return a.tail(cmd.Context(), b, start, tailOptions{follow: follow, poll: poll, limit: limit, batch: batch})
			})
		},
	}
	f := tail.Flags()
	f.StringVar(&from, "from", "start", `where to start: "start", "end" or a cursor`)
	f.BoolVarP(&follow, "follow", "f", false, "keep polling for new events")
	f.DurationVar(&poll, "poll", time.Second, "with --follow, how often to look for new events")
	f.IntVarP(&limit, "limit", "n", 0, "stop after this many events (0: no limit)")
	f.IntVar(&batch, "batch", 500, "events read per query")
	return group("events", "Read the global event log", tail)
}

// parseFrom parses --from; "end" is resolved later, with the database.
func (a *app) parseFrom(from string) (event.Cursor, error) {
	if from == "start" || from == "end" {
		return event.Cursor{}, nil
	}
	c, err := parseCursor(from)
	if err != nil {
		return event.Cursor{}, usageError{fmt.Errorf("--from: %w", err)}
	}
	if t, err := a.target(); err == nil && t.kind == kindPostgres && c.TxID == 0 && c.Position > 0 {
		return event.Cursor{}, usagef("--from %q: PostgreSQL cursors are TX:POSITION, as events tail prints them", from)
	}
	return c, nil
}

type tailOptions struct {
	follow bool
	poll   time.Duration
	limit  int // 0: none
	batch  int
}

// tail prints events after cur until caught up, or with follow until ctx
// ends; then it prints the cursor to continue from. Ending by interruption
// is not an error.
func (a *app) tail(ctx context.Context, b backend, cur event.Cursor, o tailOptions) error {
	enc := json.NewEncoder(a.stdout) // one object per line
	if o.follow {
		fmt.Fprintf(a.stderr, "following from %s (Ctrl-C stops)\n", formatCursor(cur))
	}
	printed := 0
	for o.limit == 0 || printed < o.limit {
		n := o.batch
		if o.limit > 0 {
			n = min(n, o.limit-printed)
		}
		events, err := b.ReadAll(ctx, cur, n)
		if err != nil {
			if o.follow && ctx.Err() != nil {
				break
			}
			return err
		}
		for _, e := range events {
			if a.json() {
				err = enc.Encode(toEventJSON(e))
			} else {
				err = writeEventLine(a.stdout, e)
			}
			if err != nil {
				return err
			}
			cur = e.Cursor()
		}
		printed += len(events)
		if len(events) == n {
			continue
		}
		if !o.follow {
			break
		}
		select {
		case <-time.After(o.poll):
			continue
		case <-ctx.Done():
		}
		break
	}
	fmt.Fprintf(a.stderr, "next: --from %s\n", formatCursor(cur))
	return nil
}

// writeEventLine prints one event on one line for events tail.
func writeEventLine(w io.Writer, e event.Event) error {
	var md strings.Builder
	for _, kv := range metadataPairs(e.Metadata) {
		if kv[0] == "traceparent" || kv[0] == "tracestate" {
			continue // long, and in --output json
		}
		fmt.Fprintf(&md, " %s=%s", kv[0], kv[1])
	}
	_, err := fmt.Fprintf(w, "%s  %s  %s@%d  %s%s\n", formatCursor(e.Cursor()), formatTime(e.RecordedAt), e.StreamID, e.Version, e.Type, md.String())
	return err
}
