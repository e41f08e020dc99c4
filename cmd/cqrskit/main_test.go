package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cqrskit/cqrskit/event"
	"github.com/cqrskit/cqrskit/outbox"
	"github.com/cqrskit/cqrskit/store/postgres"
	"github.com/cqrskit/cqrskit/store/sqlite"
	"github.com/cqrskit/cqrskit/testutil/pgtest"
)

// The tests drive the CLI as a user does: TestMain builds the binary once,
// each test runs it against a real SQLite file or PostgreSQL database that
// the test filled through the stores, and reads stdout, stderr and the exit
// code.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cqrskit-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cqrskit")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build the cqrskit binary: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

// cliEnv is the environment of every run: the test's, without the CLI's own
// variables, so the machine's settings cannot leak in.
func cliEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envDB+"=") && !strings.HasPrefix(kv, envSchema+"=") && !strings.HasPrefix(kv, envTablePrefix+"=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// cli runs the binary with args and the extra environment variables.
func cli(t testing.TB, env []string, args ...string) result {
	t.Helper()
	r := startCLIEnv(t, env, args...)
	return r.wait(t)
}

// running is the binary running in the background.
type running struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	cancel         context.CancelFunc
}

// syncBuffer is a bytes.Buffer a test may read while the process writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the process has written want to buf, failing the
// test after a minute.
func (r *running) waitFor(t testing.TB, buf *syncBuffer, want string) {
	t.Helper()
	waitForOutput(t, buf, want, r.cmd.Args[1:])
}

func waitForOutput(t testing.TB, buf *syncBuffer, want string, args []string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !strings.Contains(buf.String(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("cqrskit %v did not print %q; it printed:\n%s", args, want, buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startCLI starts the binary with args; wait for its result.
func startCLI(t testing.TB, args ...string) *running {
	t.Helper()
	return startCLIEnv(t, nil, args...)
}

func startCLIEnv(t testing.TB, env []string, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	r := &running{cancel: cancel}
	r.cmd = exec.CommandContext(ctx, binary, args...)
	r.cmd.Env = cliEnv(env...)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	return r
}

func (r *running) wait(t testing.TB) result {
	t.Helper()
	err := r.cmd.Wait()
	r.cancel()
	res := result{stdout: r.stdout.String(), stderr: r.stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run cqrskit %v: %v", r.cmd.Args, err)
	}
	return res
}

// want fails the test unless r exited with code.
func (r result) want(t testing.TB, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	return r
}

// json decodes stdout into v.
func (r result) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("stdout is not the JSON expected (%v):\n%s", err, r.stdout)
	}
}

// oneLineError checks that stderr is a single "cqrskit: ..." line
// containing each of want.
func (r result) oneLineError(t testing.TB, want ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "cqrskit: ") {
		t.Fatalf("stderr is not one \"cqrskit: \" line:\n%s", r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Errorf("error %q does not contain %q", lines[0], w)
		}
	}
}

// db is a database for one test, its tables created through the store
// (unless opened with empty), and the --db flag that names it.
type db struct {
	flag  string // --db=URL
	url   string
	store adminStore
}

// adminStore is what both stores offer the tests.
type adminStore interface {
	sqlStore
	Append(ctx context.Context, stream string, expected event.ExpectedVersion, events []event.Event) (event.AppendResult, error)
	outbox.Store
}

// kinds are the databases every store-backed test runs against.
var kinds = []string{"sqlite", "postgres"}

// forEachKind runs f as a parallel subtest per database kind.
func forEachKind(t *testing.T, f func(t *testing.T, kind string)) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			f(t, kind)
		})
	}
}

// newDB returns a migrated database of kind.
func newDB(t testing.TB, kind string) *db {
	t.Helper()
	d := emptyDB(t, kind)
	if err := d.store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

// emptyDB returns a database of kind without the cqrskit tables.
func emptyDB(t testing.TB, kind string) *db {
	t.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	d := &db{}
	switch kind {
	case "sqlite":
		path := filepath.Join(t.TempDir(), "events.db")
		s, err := sqlite.Open(ctx, path, sqlite.Config{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		d.url = "sqlite://" + path
		d.store = s
	case "postgres":
		pg := pgtest.New(t)
		s, err := postgres.New(pg.DB(), postgres.Config{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		d.url = pg.URL
		d.store = s
	default:
		t.Fatalf("unknown database kind %q", kind)
	}
	d.flag = "--db=" + d.url
	return d
}

// run runs the CLI against d.
func (d *db) run(t testing.TB, args ...string) result {
	t.Helper()
	return cli(t, nil, append([]string{d.flag}, args...)...)
}

// appendEvents appends n events to stream, with metadata.
func (d *db) appendEvents(t testing.TB, stream string, n int) []event.Event {
	t.Helper()
	evs := make([]event.Event, n)
	for i := range evs {
		evs[i] = event.Event{
			StreamType: "product",
			Type:       "product.renamed",
			Data:       fmt.Appendf(nil, `{"name":"n%d"}`, i),
			Metadata: event.Metadata{
				CorrelationID: "corr-" + stream,
				CausationID:   fmt.Sprintf("cause-%d", i),
				Extra:         map[string]string{"tenant": "acme"},
			},
		}
	}
	res, err := d.store.Append(context.Background(), stream, event.Any, evs)
	if err != nil {
		t.Fatal(err)
	}
	return res.Events
}
