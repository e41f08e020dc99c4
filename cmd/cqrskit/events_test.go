package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// ndjson decodes one event per line.
func ndjson(t testing.TB, out string) []eventJSON {
	t.Helper()
	var evs []eventJSON
	for line := range strings.Lines(out) {
		var e eventJSON
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		evs = append(evs, e)
	}
	return evs
}

func TestEventsTail(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		d := newDB(t, kind)
		d.appendEvents(t, "product-a", 2)
		d.appendEvents(t, "product-b", 3)

		// Events become visible to gap-safe readers when every older
		// transaction on the server has ended: wait for them.
		var all []eventJSON
		for deadline := time.Now().Add(10 * time.Second); len(all) < 5 && time.Now().Before(deadline); {
			all = ndjson(t, d.run(t, "events", "tail", "-o", "json").want(t, exitOK).stdout)
		}
		if len(all) != 5 {
			t.Fatalf("tail printed %d events, want 5", len(all))
		}
		for i := 1; i < len(all); i++ {
			prev, cur := all[i-1], all[i]
			if cur.TxID < prev.TxID || cur.TxID == prev.TxID && cur.Position <= prev.Position {
				t.Errorf("events out of order: %s then %s", prev.Cursor, cur.Cursor)
			}
		}

		// --from continues after a cursor; --limit stops early.
		rest := ndjson(t, d.run(t, "events", "tail", "--from", all[1].Cursor, "-o", "json").want(t, exitOK).stdout)
		if len(rest) != 3 || rest[0].ID != all[2].ID {
			t.Errorf("--from %s: %d events, first %+v", all[1].Cursor, len(rest), rest)
		}
		r := d.run(t, "events", "tail", "--limit", "2", "--batch", "1")
		if got := strings.Count(r.want(t, exitOK).stdout, "\n"); got != 2 {
			t.Errorf("--limit 2 printed %d lines:\n%s", got, r.stdout)
		}
		if !strings.Contains(r.stderr, "next: --from "+all[1].Cursor) {
			t.Errorf("stderr lacks the next cursor %s:\n%s", all[1].Cursor, r.stderr)
		}
		if !strings.Contains(r.stdout, "product-a@1  product.renamed correlation=corr-product-a") {
			t.Errorf("text line:\n%s", r.stdout)
		}
		if kind == "postgres" {
			d.run(t, "events", "tail", "--from", "3").want(t, exitUsage)
		}

		// --follow --from end prints only new events, until interrupted.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, d.flag, "events", "tail", "--follow", "--from", "end", "--poll", "50ms", "-o", "json")
		cmd.Env = cliEnv()
		var stderr syncBuffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		waitForOutput(t, &stderr, "following from ", cmd.Args[1:]) // it has its start cursor
		fresh := d.appendEvents(t, "product-c", 2)
		// In PostgreSQL --from end starts at the oldest running transaction
		// on the server, so events committed just before may show too;
		// SQLite starts exactly at the end.
		want := map[string]bool{fresh[0].ID.String(): true, fresh[1].ID.String(): true}
		var got []string
		for len(want) > 0 {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("tail --follow ended early; got %v", got)
				}
				for _, e := range ndjson(t, line) {
					got = append(got, e.StreamID)
					delete(want, e.ID)
				}
			case <-ctx.Done():
				t.Fatalf("tail --follow did not print the new events; got %v", got)
			}
		}
		if kind == "sqlite" && len(got) != 2 {
			t.Errorf("tail --follow --from end printed %v, want only the 2 new events", got)
		}
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		for range lines { // drain
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("tail --follow after Ctrl-C: %v (want exit 0)", err)
		}
		if !strings.Contains(stderr.String(), "next: --from ") {
			t.Errorf("tail --follow did not print where to continue:\n%s", stderr.String())
		}
	})
}
