package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"

	"github.com/spf13/cobra"

	"github.com/cqrskit/cqrskit/store"

	"github.com/cqrskit/cqrskit/event"
)

// logReader reads streams and the global log (store.Admin lists streams
// and gives the log's head).
type logReader interface {
	Load(ctx context.Context, stream string, from int64) iter.Seq2[event.Event, error]
	ReadAll(ctx context.Context, after event.Cursor, limit int) ([]event.Event, error)
}

// streamPage is the JSON output of streams list.
type streamPage struct {
	Streams []store.StreamInfo `json:"streams"`
	// NextAfter is set when more streams follow: pass it to --after.
	NextAfter string `json:"next_after,omitempty"`
}

// streamDetail is the JSON output of streams show.
type streamDetail struct {
	StreamID   string      `json:"stream_id"`
	StreamType string      `json:"stream_type"`
	Events     []eventJSON `json:"events"`
}

// listPageSize is how many streams streams list --all reads per query.
const listPageSize = 1000

func (a *app) streamsCommand() *cobra.Command {
	var (
		after string
		limit int
		all   bool
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List streams by ID, with type, version and last write",
		Long: `List streams in stream ID order, with type, version (the number of events)
and when the last event was recorded. Pages with --after; --all lists every
stream.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 {
				return usagef("--limit %d: must be at least 1", limit)
			}
			return a.withBackend(cmd.Context(), needTables, func(b backend) error {
				return a.listStreams(cmd.Context(), b, after, limit, all)
			})
		},
	}
	list.Flags().StringVar(&after, "after", "", "list streams whose ID sorts after this one")
	list.Flags().IntVar(&limit, "limit", 100, "list at most this many streams")
	list.Flags().BoolVar(&all, "all", false, "list every stream (ignores --limit)")

	var from int64
	show := &cobra.Command{
		Use:   "show STREAM-ID",
		Short: "Show a stream's events with versions, metadata and payloads",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if from < 1 {
				return usagef("--from %d: versions start at 1", from)
			}
			return a.withBackend(cmd.Context(), needTables, func(b backend) error {
				return a.showStream(cmd.Context(), b, argv[0], from)
			})
		},
	}
	show.Flags().Int64Var(&from, "from", 1, "first version to show")
	return group("streams", "List streams and show their events", list, show)
}

func (a *app) listStreams(ctx context.Context, b backend, after string, limit int, all bool) error {
	var page streamPage
	if all {
		for {
			batch, err := b.ListStreams(ctx, after, listPageSize)
			if err != nil {
				return err
			}
			page.Streams = append(page.Streams, batch...)
			if len(batch) < listPageSize {
				break
			}
			after = batch[len(batch)-1].StreamID
		}
	} else {
		batch, err := b.ListStreams(ctx, after, limit+1) // one more tells whether more follow
		if err != nil {
			return err
		}
		if len(batch) > limit {
			batch = batch[:limit]
			page.NextAfter = batch[limit-1].StreamID
		}
		page.Streams = batch
	}
	if page.Streams == nil {
		page.Streams = []store.StreamInfo{}
	}
	if a.json() {
		return writeJSON(a.stdout, page)
	}
	tw := newTable(a.stdout)
	row(tw, "STREAM", "TYPE", "VERSION", "UPDATED")
	for _, s := range page.Streams {
		row(tw, s.StreamID, s.StreamType, s.Version, formatTime(s.UpdatedAt))
	}
	tw.Flush()
	if page.NextAfter != "" {
		fmt.Fprintf(a.stderr, "more streams follow: --after %q\n", page.NextAfter)
	}
	return nil
}

func (a *app) showStream(ctx context.Context, b backend, id string, from int64) error {
	d := streamDetail{StreamID: id, Events: []eventJSON{}}
	var events []event.Event
	for e, err := range b.Load(ctx, id, from) {
		if errors.Is(err, event.ErrStreamNotFound) {
			return fmt.Errorf("stream %q not found in %s", id, b)
		}
		if err != nil {
			return err
		}
		events = append(events, e)
		d.StreamType = e.StreamType
		d.Events = append(d.Events, toEventJSON(e))
	}
	if a.json() {
		return writeJSON(a.stdout, d)
	}
	fmt.Fprintf(a.stdout, "stream %s  type %s  %d events shown\n", id, d.StreamType, len(events))
	for _, e := range events {
		fmt.Fprintln(a.stdout)
		writeEventBlock(a.stdout, e)
	}
	return nil
}

// writeEventBlock prints one event with every field, for streams show and
// deadletters show.
func writeEventBlock(w io.Writer, e event.Event) {
	fmt.Fprintf(w, "version %d  %s (schema %d)\n", e.Version, e.Type, e.SchemaVersion)
	tw := newTable(w)
	row(tw, "  id", e.ID)
	row(tw, "  position", fmt.Sprintf("%d (cursor %s)", e.Position, formatCursor(e.Cursor())))
	row(tw, "  recorded at", formatTime(e.RecordedAt))
	for _, kv := range metadataPairs(e.Metadata) {
		row(tw, "  "+kv[0], kv[1])
	}
	row(tw, "  data", payloadText(e.Data))
	tw.Flush()
}
