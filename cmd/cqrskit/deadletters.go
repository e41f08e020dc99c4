package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cqrskit/cqrskit/handler"
)

// deadLetterStore reads and removes dead letters (store.Admin tells
// whether a handler has processed an event since).
type deadLetterStore interface {
	ListDeadLetters(ctx context.Context, handler string, afterID int64, limit int) ([]handler.DeadLetter, error)
	GetDeadLetter(ctx context.Context, id int64) (handler.DeadLetter, error)
	DeleteDeadLetter(ctx context.Context, id int64) error
}

// deadLetterJSON is a dead letter in JSON output.
type deadLetterJSON struct {
	ID            int64             `json:"id"`
	Handler       string            `json:"handler"`
	EventID       string            `json:"event_id"`
	Topic         string            `json:"topic"`
	Error         string            `json:"error"`
	Attempts      int               `json:"attempts"`
	FirstFailedAt time.Time         `json:"first_failed_at"`
	LastFailedAt  time.Time         `json:"last_failed_at"`
	Headers       map[string]string `json:"headers,omitempty"`
	Payload       json.RawMessage   `json:"payload,omitempty"`
	PayloadBase64 []byte            `json:"payload_base64,omitempty"`
}

func toDeadLetterJSON(d handler.DeadLetter) deadLetterJSON {
	j := deadLetterJSON{
		ID: d.ID, Handler: d.Handler, EventID: d.EventID.String(), Topic: d.Topic, Error: d.Error,
		Attempts: d.Attempts, FirstFailedAt: d.FirstFailedAt, LastFailedAt: d.LastFailedAt, Headers: d.Headers,
	}
	j.Payload, j.PayloadBase64 = payloadJSON(d.Payload)
	return j
}

// deadLetterPage is the JSON output of deadletters list.
type deadLetterPage struct {
	DeadLetters []deadLetterJSON `json:"dead_letters"`
	// NextAfter is set when more follow: pass it to --after.
	NextAfter int64 `json:"next_after,omitempty"`
}

func (a *app) deadLettersCommand() *cobra.Command {
	var (
		handlerName string
		after       int64
		limit       int
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List dead letters, oldest first",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return usagef("--limit %d: must be at least 1", limit)
			}
			return a.withBackend(cmd.Context(), needTables, func(b backend) error {
				return a.listDeadLetters(cmd.Context(), b, handlerName, after, limit)
			})
		},
	}
	list.Flags().StringVar(&handlerName, "handler", "", "only this handler's dead letters")
	list.Flags().Int64Var(&after, "after", 0, "list dead letters with an ID above this one")
	list.Flags().IntVar(&limit, "limit", 100, "list at most this many")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one dead letter: error, attempts, headers and payload",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ids, err := parseIDs(argv)
			if err != nil {
				return err
			}
			return a.withBackend(cmd.Context(), needTables, func(b backend) error {
				return a.showDeadLetter(cmd.Context(), b, ids[0])
			})
		},
	}

	var (
		bf   brokerFlags
		wait time.Duration
	)
	replay := &cobra.Command{
		Use:   "replay ID...",
		Short: "Republish dead letters to the broker so their handler processes them again",
		Long: `Republish each dead letter's message, as the handler received it, to its
topic on the broker (--nats-url or --kafka-brokers), so that the running
service's consumer delivers it to the handler again. The CLI cannot run the
handler's code itself; a service can, with handler.DeadLetters.Replay.

Then, for up to --wait, it watches the database: when the handler's processed
mark for the event appears, the dead letter is deleted and the replay
succeeded; when the handler dead-letters the event again (a newer failure),
the replay failed and the dead letter stays with the new error. With --wait 0
it only republishes, and the dead letter stays until discarded.

Every consumer group of the topic receives the message again. Idempotent
handlers skip an event they processed before, unless its processed mark was
pruned (handler.Prune): such a handler applies it again.

NATS JetStream drops a message whose ID it stored within the stream's
duplicate window (2 minutes by default). Replay reads the window from the
stream and refuses a dead letter whose message may still be inside it.`,
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ids, err := parseIDs(argv)
			if err != nil {
				return err
			}
			if wait < 0 {
				return usagef("--wait %s: must not be negative", wait)
			}
			pub, err := bf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer pub.close()
			return a.withBackend(cmd.Context(), needTables, func(b backend) error {
				return a.replayDeadLetters(cmd.Context(), b, pub, ids, wait)
			})
		},
	}
	bf.register(replay.Flags())
	replay.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for the handler's outcome (0: don't)")

	discard := &cobra.Command{
		Use:   "discard ID...",
		Short: "Delete dead letters without handling them",
		Args:  usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			ids, err := parseIDs(argv)
			if err != nil {
				return err
			}
			return a.withBackend(cmd.Context(), needTables, func(b backend) error {
				var errs []error
				for _, id := range ids {
					if err := b.DeleteDeadLetter(cmd.Context(), id); err != nil {
						errs = append(errs, err)
						continue
					}
					fmt.Fprintf(a.stdout, "discarded dead letter %d\n", id)
				}
				return errors.Join(errs...)
			})
		},
	}
	return group("deadletters", "Inspect, replay or discard messages handlers gave up on", list, show, replay, discard)
}

// parseIDs parses dead letter IDs.
func parseIDs(argv []string) ([]int64, error) {
	ids := make([]int64, len(argv))
	for i, s := range argv {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id < 1 {
			return nil, usagef("dead letter ID %q: want a positive number, as deadletters list shows", s)
		}
		ids[i] = id
	}
	return ids, nil
}

func (a *app) listDeadLetters(ctx context.Context, b backend, handlerName string, after int64, limit int) error {
	ls, err := b.ListDeadLetters(ctx, handlerName, after, limit+1)
	if err != nil {
		return err
	}
	page := deadLetterPage{DeadLetters: []deadLetterJSON{}}
	if len(ls) > limit {
		ls = ls[:limit]
		page.NextAfter = ls[limit-1].ID
	}
	for _, d := range ls {
		page.DeadLetters = append(page.DeadLetters, toDeadLetterJSON(d))
	}
	if a.json() {
		return writeJSON(a.stdout, page)
	}
	tw := newTable(a.stdout)
	row(tw, "ID", "HANDLER", "EVENT", "TOPIC", "ATTEMPTS", "LAST FAILED", "ERROR")
	for _, d := range ls {
		row(tw, d.ID, d.Handler, d.EventID, d.Topic, d.Attempts, formatTime(d.LastFailedAt), truncate(d.Error, 60))
	}
	tw.Flush()
	if page.NextAfter != 0 {
		fmt.Fprintf(a.stderr, "more dead letters follow: --after %d\n", page.NextAfter)
	}
	return nil
}

// truncate shortens s to n runes on one line.
func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func (a *app) showDeadLetter(ctx context.Context, b backend, id int64) error {
	d, err := b.GetDeadLetter(ctx, id)
	if err != nil {
		return deadLetterErr(id, err)
	}
	if a.json() {
		return writeJSON(a.stdout, toDeadLetterJSON(d))
	}
	tw := newTable(a.stdout)
	row(tw, "dead letter", d.ID)
	row(tw, "handler", d.Handler)
	row(tw, "event", d.EventID)
	row(tw, "topic", d.Topic)
	row(tw, "attempts", d.Attempts)
	row(tw, "first failed", formatTime(d.FirstFailedAt))
	row(tw, "last failed", formatTime(d.LastFailedAt))
	row(tw, "error", strings.Join(strings.Fields(d.Error), " "))
	for _, k := range slices.Sorted(maps.Keys(d.Headers)) {
		row(tw, "header "+k, d.Headers[k])
	}
	row(tw, "payload", payloadText(d.Payload))
	return tw.Flush()
}

// deadLetterErr words a lookup failure.
func deadLetterErr(id int64, err error) error {
	if errors.Is(err, handler.ErrDeadLetterNotFound) {
		return fmt.Errorf("dead letter %d not found", id)
	}
	return err
}

// replayPoll is how often replay looks for the handler's outcome.
const replayPoll = 200 * time.Millisecond

func (a *app) replayDeadLetters(ctx context.Context, b backend, pub *publisher, ids []int64, wait time.Duration) error {
	var errs []error
	for _, id := range ids {
		if err := a.replayOne(ctx, b, pub, id, wait); err != nil {
			errs = append(errs, fmt.Errorf("dead letter %d: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

func (a *app) replayOne(ctx context.Context, b backend, pub *publisher, id int64, wait time.Duration) error {
	d, err := b.GetDeadLetter(ctx, id)
	if err != nil {
		return deadLetterErr(id, err)
	}
	done, err := b.Processed(ctx, d.Handler, d.EventID)
	if err != nil {
		return err
	}
	if done {
		// A later delivery succeeded: nothing to replay.
		if err := b.DeleteDeadLetter(ctx, id); err != nil && !errors.Is(err, handler.ErrDeadLetterNotFound) {
			return err
		}
		fmt.Fprintf(a.stdout, "dead letter %d: handler %s has processed event %s since; dead letter deleted\n", id, d.Handler, d.EventID)
		return nil
	}
	if pub.dupWindow > 0 {
		// The message was published no later than its first failure.
		if age := time.Since(d.FirstFailedAt); age < pub.dupWindow {
			return fmt.Errorf("first failed %s ago, within the stream's %s duplicate window: JetStream would drop the replay as a duplicate; retry in %s",
				formatAge(age), pub.dupWindow, formatAge(pub.dupWindow-age))
		}
	}
	m := d.Message()
	if m.Topic == "" {
		return errors.New("the dead letter has no topic to republish to")
	}
	if err := pub.Publish(ctx, m); err != nil {
		return fmt.Errorf("republish to %s: %w", pub.name, err)
	}
	fmt.Fprintf(a.stdout, "dead letter %d: republished event %s to topic %s on %s\n", id, d.EventID, m.Topic, pub.name)
	if wait == 0 {
		fmt.Fprintf(a.stdout, "dead letter %d: not waiting; it stays until discarded\n", id)
		return nil
	}
	deadline := time.Now().Add(wait)
	for {
		done, err := b.Processed(ctx, d.Handler, d.EventID)
		if err != nil {
			return err
		}
		if done {
			if err := b.DeleteDeadLetter(ctx, id); err != nil && !errors.Is(err, handler.ErrDeadLetterNotFound) {
				return fmt.Errorf("handler %s processed event %s, but deleting the dead letter failed: %w", d.Handler, d.EventID, err)
			}
			fmt.Fprintf(a.stdout, "dead letter %d: handler %s processed event %s; dead letter deleted\n", id, d.Handler, d.EventID)
			return nil
		}
		again, err := b.GetDeadLetter(ctx, id)
		switch {
		case errors.Is(err, handler.ErrDeadLetterNotFound):
			return fmt.Errorf("it was deleted while waiting for handler %s (by another replay or discard?)", d.Handler)
		case err != nil:
			return err
		case again.LastFailedAt.After(d.LastFailedAt):
			return fmt.Errorf("handler %s failed again (attempts %d): %s", d.Handler, again.Attempts, strings.Join(strings.Fields(again.Error), " "))
		case time.Now().After(deadline):
			return fmt.Errorf("republished, but handler %s did not process event %s within %s; the dead letter stays (the handler may still be retrying: see 'cqrskit deadletters show %d')", d.Handler, d.EventID, wait, id)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("republished; stopped waiting for handler %s: %w", d.Handler, ctx.Err())
		case <-time.After(replayPoll):
		}
	}
}
