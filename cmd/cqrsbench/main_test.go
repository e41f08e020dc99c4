package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/testutil/pgtest"
)

// TestRunSQLite runs every scenario end to end, tiny, on SQLite with an
// in-process NATS server, and checks the shape of what it writes. It
// asserts no timing: only that every case measured something.
func TestRunSQLite(t *testing.T) {
	t.Parallel()
	runAndCheck(t, "-store=sqlite")
}

// TestRunPostgres is TestRunSQLite on PostgreSQL: the runner creates its
// scratch databases on the server pgtest.New provides.
func TestRunPostgres(t *testing.T) {
	t.Parallel()
	pg := pgtest.New(t)
	runAndCheck(t, "-store=postgres", "-postgres-url="+pg.URL)
}

func runAndCheck(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	jsonPath, svgPath := filepath.Join(dir, "results.json"), filepath.Join(dir, "ratios.svg")
	var stdout, stderr bytes.Buffer
	args = append(args, "-quick", "-scale=0.02", "-json="+jsonPath, "-svg="+svgPath)
	if code := run(ctx, args, &stdout, &stderr); code != 0 {
		t.Fatalf("cqrsbench %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, &stdout, &stderr)
	}
	t.Logf("stdout:\n%s", &stdout)

	var rep struct {
		Command string `json:"command"`
		Store   string `json:"store"`
		Machine struct {
			CPUs      int    `json:"cpus"`
			GoVersion string `json:"go_version"`
			Broker    string `json:"broker"`
		} `json:"machine"`
		Rows   []map[string]any `json:"rows"`
		Errors []string         `json:"errors"`
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("results JSON: %v\n%s", err, b)
	}
	// The broker line names the server and its version (the runs of
	// docs/BENCHMARKS.md compare servers).
	if !strings.Contains(rep.Machine.Broker, "nats-server 2.") {
		t.Errorf("report broker %q: want the NATS server's version", rep.Machine.Broker)
	}
	if rep.Command == "" || rep.Store == "" || rep.Machine.CPUs < 1 || rep.Machine.GoVersion == "" || len(rep.Errors) > 0 {
		t.Errorf("report header: command %q, store %q, cpus %d, go %q, errors %q", rep.Command, rep.Store, rep.Machine.CPUs, rep.Machine.GoVersion, rep.Errors)
	}
	perScenario := map[string]int{}
	for _, r := range rep.Rows {
		name, _ := r["scenario"].(string)
		perScenario[name]++
		for _, key := range []string{"case", "unit", "raw_what"} {
			if s, _ := r[key].(string); s == "" {
				t.Errorf("%s row %v: %q is empty", name, r["case"], key)
			}
		}
		for _, key := range []string{"framework", "raw", "ratio"} {
			if v, _ := r[key].(float64); !(v > 0) {
				t.Errorf("%s row %v: %s = %v, want a positive number", name, r["case"], key, r[key])
			}
		}
		if _, ok := r["target"]; ok {
			if _, ok := r["met"].(bool); !ok {
				t.Errorf("%s row %v: a target without met", name, r["case"])
			}
		}
	}
	want := map[string]int{"append": 3, "drain": 1, "consumer": 3, "load": 2, "latency": 1, "rebuild": 2}
	for name, n := range want {
		if perScenario[name] != n {
			t.Errorf("scenario %s: %d rows, want %d", name, perScenario[name], n)
		}
	}
	if len(perScenario) != len(want) {
		t.Errorf("rows of scenarios %v, want %v", perScenario, want)
	}
	// The table has a line per row.
	for name := range want {
		if !strings.Contains(stdout.String(), "\n"+name+" ") {
			t.Errorf("the table has no %s row:\n%s", name, &stdout)
		}
	}

	svg, err := os.ReadFile(svgPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName xml.Name
		Rects   []struct{} `xml:"rect"`
	}
	if err := xml.Unmarshal(svg, &doc); err != nil || doc.XMLName.Local != "svg" {
		t.Fatalf("SVG does not parse as an <svg> document (%v):\n%s", err, svg)
	}
	if len(doc.Rects) < len(rep.Rows) {
		t.Errorf("SVG has %d rects for %d rows", len(doc.Rects), len(rep.Rows))
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	env := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		bad  string // a part of the error; "" for none
	}{
		{nil, ""},
		{[]string{"-store=sqlite", "-broker=kafka", "-only=append,drain", "-quick"}, ""},
		{[]string{"-store=mysql"}, "-store"},
		{[]string{"-broker=rabbit"}, "-broker"},
		{[]string{"-only=append,nope"}, `unknown scenario "nope"`},
		{[]string{"-scale=0"}, "-scale"},
		{[]string{"-latency-read=sometimes"}, "-latency-read"},
		{[]string{"-broker=kafka", "-nats-url=nats://127.0.0.1:4222"}, "choose one broker"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		_, err := parseFlags(tc.args, env, &bytes.Buffer{})
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("%q: error %v, want one mentioning %q", tc.args, err, tc.bad)
		}
	}
	cfg, err := parseFlags(nil, func(k string) string {
		if k == "CQRSKIT_TEST_POSTGRES_URL" {
			return "postgres://elsewhere/db"
		}
		return ""
	}, &bytes.Buffer{})
	if err != nil || cfg.postgresURL != "postgres://elsewhere/db" || cfg.sizes != defaultSizes() {
		t.Errorf("defaults: %+v, %v", cfg, err)
	}
}

func TestPercentiles(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := percentiles(ds, 0.5, 0.99, 1)
	want := []time.Duration{50 * time.Millisecond, 99 * time.Millisecond, 100 * time.Millisecond}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("percentiles = %v, want %v", got, want)
			break
		}
	}
}
