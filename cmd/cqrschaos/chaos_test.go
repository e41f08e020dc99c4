//go:build unix

package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// machinePostgres is the server the short run makes its scratch database
// on: CQRSKIT_TEST_POSTGRES_URL, else the machine's server on 5432. When
// it is unreachable the test is skipped, or fails with
// CQRSKIT_REQUIRE_POSTGRES=1 (as in CI).
func machinePostgres(t *testing.T) string {
	t.Helper()
	u := os.Getenv("CQRSKIT_TEST_POSTGRES_URL")
	if u == "" {
		u = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	db, err := sql.Open("pgx", u)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
		db.Close()
	}
	if err != nil {
		unavailable(t, "PostgreSQL at %s is unreachable (set CQRSKIT_TEST_POSTGRES_URL): %v", redact(u), err)
	}
	return u
}

func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CQRSKIT_REQUIRE_POSTGRES") == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

var lastLine = regexp.MustCompile(`^cqrschaos: (\d+) commands, (\d+) faults, (\d+) lost, (\d+) duplicated$`)

// TestChaosShort runs the suite for 20 seconds with 4 kills, a NATS
// restart and a poison event, against a scratch database on the machine's
// PostgreSQL and a private nats-server, and wants nothing lost or
// duplicated.
func TestChaosShort(t *testing.T) {
	pg := machinePostgres(t)
	if _, err := findNATSServer(""); err != nil {
		unavailable(t, "%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out bytes.Buffer
	code := run(ctx, []string{"-duration=20s", "-kills=4", "-postgres-url=" + pg, "-v"}, &out, &out)
	t.Logf("output:\n%s", out.String())

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	m := lastLine.FindStringSubmatch(lines[len(lines)-1])
	if m == nil {
		t.Fatalf("last line %q is not the summary", lines[len(lines)-1])
	}
	n, _ := strconv.Atoi(m[1])
	k, _ := strconv.Atoi(m[2])
	if m[3] != "0" || m[4] != "0" {
		t.Errorf("%s lost, %s duplicated; want 0 and 0", m[3], m[4])
	}
	if n < 100 {
		t.Errorf("only %d commands acknowledged", n)
	}
	if k < 6 { // 4 kills, 1 NATS restart, 1 poison
		t.Errorf("%d faults injected, want 6", k)
	}
	if code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
}
