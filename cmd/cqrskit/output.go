package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/cqrskit/cqrskit/event"
)

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable returns a writer that aligns tab-separated columns; Flush it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// row writes cells as one table row.
func row(w io.Writer, cells ...any) {
	for i, c := range cells {
		if i > 0 {
			io.WriteString(w, "\t")
		}
		fmt.Fprint(w, c)
	}
	io.WriteString(w, "\n")
}

// formatTime formats t for text output: UTC, milliseconds; "-" when zero.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// formatAge formats a duration for people: 1.2s, 3m4s, 5h6m, 7d8h.
func formatAge(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
	days := d / (24 * time.Hour)
	return fmt.Sprintf("%dd%dh", days, (d-days*24*time.Hour)/time.Hour)
}

// formatCursor prints a cursor as "TX:POSITION", or "POSITION" when TxID
// is 0 (SQLite). parseCursor reads it back.
func formatCursor(c event.Cursor) string {
	if c.TxID == 0 {
		return strconv.FormatInt(c.Position, 10)
	}
	return strconv.FormatUint(c.TxID, 10) + ":" + strconv.FormatInt(c.Position, 10)
}

// parseCursor parses formatCursor's output.
func parseCursor(s string) (event.Cursor, error) {
	bad := func() (event.Cursor, error) {
		return event.Cursor{}, fmt.Errorf("cursor %q: want POSITION or TX:POSITION, as events tail prints it", s)
	}
	var (
		c   event.Cursor
		err error
	)
	tx, pos, hasTx := strings.Cut(s, ":")
	if !hasTx {
		pos = tx
	} else if c.TxID, err = strconv.ParseUint(tx, 10, 64); err != nil {
		return bad()
	}
	if c.Position, err = strconv.ParseInt(pos, 10, 64); err != nil || c.Position < 0 {
		return bad()
	}
	return c, nil
}

// eventJSON is an event in JSON output. Data is the payload as JSON when
// it is valid JSON, else DataBase64 holds it.
type eventJSON struct {
	Cursor        string          `json:"cursor"`
	Position      int64           `json:"position"`
	TxID          uint64          `json:"tx_id,omitempty"`
	ID            string          `json:"id"`
	StreamID      string          `json:"stream_id"`
	StreamType    string          `json:"stream_type,omitempty"`
	Version       int64           `json:"version"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	RecordedAt    time.Time       `json:"recorded_at"`
	Metadata      event.Metadata  `json:"metadata"`
	Data          json.RawMessage `json:"data,omitempty"`
	DataBase64    []byte          `json:"data_base64,omitempty"`
}

func toEventJSON(e event.Event) eventJSON {
	j := eventJSON{
		Cursor: formatCursor(e.Cursor()), Position: e.Position, TxID: e.TxID, ID: e.ID.String(),
		StreamID: e.StreamID, StreamType: e.StreamType, Version: e.Version, Type: e.Type,
		SchemaVersion: e.SchemaVersion, RecordedAt: e.RecordedAt, Metadata: e.Metadata,
	}
	j.Data, j.DataBase64 = payloadJSON(e.Data)
	return j
}

// payloadJSON returns p as raw JSON if it is JSON, else as bytes for
// base64.
func payloadJSON(p []byte) (json.RawMessage, []byte) {
	if len(p) > 0 && json.Valid(p) {
		return json.RawMessage(p), nil
	}
	return nil, p
}

// maxTextPayload is the longest payload printed in text output.
const maxTextPayload = 2048

// payloadText renders a payload for text output.
func payloadText(p []byte) string {
	switch {
	case len(p) == 0:
		return "(empty)"
	case len(p) > maxTextPayload || !utf8.Valid(p):
		return fmt.Sprintf("(%d bytes; --output json shows them)", len(p))
	}
	return strings.TrimSpace(string(p))
}

// metadataPairs lists metadata as label/value pairs, omitting empty ones.
func metadataPairs(m event.Metadata) [][2]string {
	var out [][2]string
	add := func(k, v string) {
		if v != "" {
			out = append(out, [2]string{k, v})
		}
	}
	add("correlation", m.CorrelationID)
	add("causation", m.CausationID)
	add("traceparent", m.TraceParent)
	add("tracestate", m.TraceState)
	keys := make([]string, 0, len(m.Extra))
	for k := range m.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		add("x-"+k, m.Extra[k])
	}
	return out
}
