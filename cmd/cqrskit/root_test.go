package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUsageErrorsExit2(t *testing.T) {
	t.Parallel()
	sqliteDB := "--db=sqlite://" + filepath.Join(t.TempDir(), "none.db")
	tests := []struct {
		name string
		args []string
		want string // in the error line
	}{
		{"no command", nil, `missing command after "cqrskit"`},
		{"unknown command", []string{"strems"}, `did you mean "streams"?`},
		{"group without command", []string{"streams"}, "choose one of: list, show"},
		{"unknown subcommand", []string{"outbox", "stats"}, `unknown command "stats" for "cqrskit outbox"`},
		{"unknown flag", []string{"streams", "list", "--bogus"}, "unknown flag: --bogus"},
		{"missing argument", []string{"streams", "show", sqliteDB}, "accepts 1 arg(s), received 0"},
		{"extra argument", []string{"outbox", "status", "x", sqliteDB}, `unknown command "x"`},
		{"bad output", []string{"streams", "list", "-o", "yaml", sqliteDB}, `--output "yaml": want text or json`},
		{"no database", []string{"streams", "list"}, "no database: pass --db"},
		{"bad limit", []string{"streams", "list", "--limit", "0", sqliteDB}, "--limit 0"},
		{"bad cursor", []string{"events", "tail", "--from", "x:y", sqliteDB}, `cursor "x:y"`},
		{"bad dead letter ID", []string{"deadletters", "show", "abc", sqliteDB}, `dead letter ID "abc"`},
		{"replay without broker", []string{"deadletters", "replay", "1", sqliteDB}, "give --nats-url or --kafka-brokers"},
		{"schema with sqlite", []string{"streams", "list", "--schema", "s", sqliteDB}, "--schema applies to PostgreSQL only"},
		{"bad dialect", []string{"migrate", "sql", "--dialect", "mysql"}, `--dialect "mysql"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, nil, tt.args...).want(t, exitUsage)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "cqrskit: ") || !strings.HasPrefix(lines[1], "Run 'cqrskit") {
				t.Fatalf("stderr is not an error line and a help hint:\n%s", r.stderr)
			}
			if !strings.Contains(lines[0], tt.want) {
				t.Errorf("error %q does not contain %q", lines[0], tt.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout is not empty:\n%s", r.stdout)
			}
		})
	}
}

func TestHelpExits0(t *testing.T) {
	t.Parallel()
	r := cli(t, nil, "--help").want(t, exitOK)
	for _, cmd := range []string{"migrate", "streams", "events", "outbox", "deadletters", "projections", "--db", "--output"} {
		if !strings.Contains(r.stdout, cmd) {
			t.Errorf("help does not mention %s:\n%s", cmd, r.stdout)
		}
	}
	cli(t, nil, "deadletters", "replay", "--help").want(t, exitOK)
}

func TestBadDatabaseURLExits1(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url string
		want      []string
	}{
		{"unknown scheme", "mysql://root:hunter2@db/x", []string{`bad database URL "mysql://root:xxxxx@db/x"`, `scheme "mysql" is not supported`}},
		{"no scheme", "events.db", []string{`bad database URL "events.db"`, "sqlite://PATH"}},
		{"bad port", "postgres://u:hunter2@127.0.0.1:port/x", []string{"bad database URL", "invalid port"}},
		{"sqlite with query", "sqlite://x.db?mode=ro", []string{"without query"}},
		{"unreachable server", "postgres://u:hunter2@127.0.0.1:1/x?connect_timeout=5", []string{"cannot connect", "127.0.0.1:1", "unreachable", "connection refused"}},
		{"missing sqlite file", "sqlite://" + filepath.Join(t.TempDir(), "missing.db"), []string{"no SQLite database at", "cqrskit migrate up"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, []string{envDB + "=" + tt.url}, "streams", "list").want(t, exitError)
			r.oneLineError(t, tt.want...)
			if strings.Contains(r.stderr, "hunter2") {
				t.Errorf("the error shows the password: %s", r.stderr)
			}
		})
	}
}

func TestMissingSchemaExits1(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		d := emptyDB(t, kind)
		for _, args := range [][]string{
			{"streams", "list"}, {"events", "tail"}, {"outbox", "status"},
			{"deadletters", "list"}, {"projections", "status"},
		} {
			d.run(t, args...).want(t, exitError).oneLineError(t, "has no cqrskit tables: run `cqrskit migrate up`")
		}
		if kind == "sqlite" {
			// A missing file is not created by a read command.
			path := strings.TrimPrefix(d.url, "sqlite://") + ".other"
			cli(t, nil, "--db=sqlite://"+path, "outbox", "status").want(t, exitError)
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("outbox status created %s (stat: %v)", path, err)
			}
		}
	})
}
