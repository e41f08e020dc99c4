package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestStreams(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		d := newDB(t, kind)
		d.appendEvents(t, "product-a", 3)
		d.appendEvents(t, "product-b", 1)
		d.appendEvents(t, "product-c", 2)

		var page streamPage
		d.run(t, "streams", "list", "-o", "json").want(t, exitOK).json(t, &page)
		if len(page.Streams) != 3 || page.NextAfter != "" {
			t.Fatalf("streams list: %+v", page)
		}
		if s := page.Streams[0]; s.StreamID != "product-a" || s.StreamType != "product" || s.Version != 3 || s.UpdatedAt.IsZero() {
			t.Errorf("first stream: %+v", s)
		}

		// Paging.
		d.run(t, "streams", "list", "--limit", "2", "-o", "json").want(t, exitOK).json(t, &page)
		if len(page.Streams) != 2 || page.NextAfter != "product-b" {
			t.Fatalf("first page: %+v", page)
		}
		d.run(t, "streams", "list", "--after", page.NextAfter, "-o", "json").want(t, exitOK).json(t, &page)
		if len(page.Streams) != 1 || page.Streams[0].StreamID != "product-c" {
			t.Fatalf("second page: %+v", page)
		}
		r := d.run(t, "streams", "list", "--limit", "2").want(t, exitOK)
		if !strings.Contains(r.stdout, "product-a") || !strings.Contains(r.stderr, `--after "product-b"`) {
			t.Errorf("text page:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		}
		d.run(t, "streams", "list", "--all", "--limit", "1", "-o", "json").want(t, exitOK).json(t, &page)
		if len(page.Streams) != 3 {
			t.Errorf("--all listed %d streams", len(page.Streams))
		}

		// Show.
		var detail streamDetail
		d.run(t, "streams", "show", "product-a", "-o", "json").want(t, exitOK).json(t, &detail)
		if detail.StreamID != "product-a" || detail.StreamType != "product" || len(detail.Events) != 3 {
			t.Fatalf("streams show: %+v", detail)
		}
		for i, e := range detail.Events {
			if e.Version != int64(i+1) || e.Type != "product.renamed" || e.Metadata.CorrelationID != "corr-product-a" ||
				e.Metadata.Extra["tenant"] != "acme" || e.ID == "" || e.Cursor == "" || e.RecordedAt.IsZero() {
				t.Errorf("event %d: %+v", i, e)
			}
			var data bytes.Buffer
			if err := json.Compact(&data, e.Data); err != nil || data.String() != fmt.Sprintf(`{"name":"n%d"}`, i) {
				t.Errorf("event %d data %s (%v)", i, e.Data, err)
			}
		}
		d.run(t, "streams", "show", "product-a", "--from", "3", "-o", "json").want(t, exitOK).json(t, &detail)
		if len(detail.Events) != 1 || detail.Events[0].Version != 3 {
			t.Errorf("--from 3: %+v", detail.Events)
		}
		r = d.run(t, "streams", "show", "product-a").want(t, exitOK)
		for _, want := range []string{"version 2  product.renamed (schema 1)", "correlation", "corr-product-a", "causation", "cause-1", "x-tenant", `{"name":"n1"}`} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("show text lacks %q:\n%s", want, r.stdout)
			}
		}

		d.run(t, "streams", "show", "product-zzz").want(t, exitError).oneLineError(t, `stream "product-zzz" not found`)
	})
}
