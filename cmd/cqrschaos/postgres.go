//go:build unix

package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/cqrskit/cqrskit/internal/pglocal"
)

// pgServer is a private PostgreSQL server made with initdb in a temporary
// directory; the suite may restart it as it likes.
type pgServer struct {
	bin  string // directory of initdb and pg_ctl
	dir  string
	port int
	cred *syscall.Credential // the user it runs as when the suite is root
	user string

	supervisor *exec.Cmd
	stdin      io.WriteCloser
}

// supervisor starts the server, says "ready", then waits for a line or EOF
// on stdin (the suite has exited, however it ended) and stops the server
// and removes its directory, unless the line was "keep". Arguments: dir,
// pg_ctl.
const supervisorScript = `
"$2" -D "$1/data" -l "$1/server.log" -w -t 120 start >"$1/pg_ctl.log" 2>&1 || { echo failed; exit 1; }
echo ready
read -r what
"$2" -D "$1/data" -m immediate -w stop >/dev/null 2>&1
[ "$what" = keep ] || rm -rf "$1"
`

// startPrivatePostgres runs initdb and starts the server.
func startPrivatePostgres(binFlag string) (*pgServer, error) {
	bin, err := pglocal.FindBin(binFlag)
	if err != nil {
		return nil, fmt.Errorf("%w (pass -pg-bin, or -postgres-url to use a running server)", err)
	}
	cred, userName, err := pglocal.Credential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cqrschaos-pg-")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	s := &pgServer{bin: bin, dir: dir, cred: cred, user: userName}
	out, err := s.command("initdb", "-D", filepath.Join(dir, "data"), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--no-locale", "--no-sync").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("initdb in %s: %v: %s", dir, err, lastLines(out, 5))
	}
	if s.port, err = freePort(); err != nil {
		return nil, err
	}
	// fsync is off: the suite crashes PostgreSQL, never the machine, and a
	// crashed server still finds every committed transaction in the
	// kernel's page cache. synchronous_commit stays on, so a commit
	// acknowledged to a client has reached the WAL.
	conf := fmt.Sprintf("\nport = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n"+
		"fsync = off\nfull_page_writes = off\nmax_connections = 300\n", s.port, dir)
	f, err := os.OpenFile(filepath.Join(dir, "data", "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("/bin/sh", "-c", supervisorScript, "sh", dir, filepath.Join(bin, "pg_ctl"))
	s.prepare(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the pg_ctl supervisor: %w", err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		_ = cmd.Wait()
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		return nil, fmt.Errorf("pg_ctl start on port %d failed: %s", s.port, lastLines(log, 5))
	}
	s.supervisor, s.stdin = cmd, stdin
	ok = true
	return s, nil
}

func (s *pgServer) prepare(cmd *exec.Cmd) {
	cmd.Dir = s.dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.dir, "LC_ALL=C", "LANG=C"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true}
}

func (s *pgServer) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	s.prepare(cmd)
	return cmd
}

// startHint tells how to start the kept server by hand.
func (s *pgServer) startHint() string {
	cmd := fmt.Sprintf("%s -D %s -l %s start", filepath.Join(s.bin, "pg_ctl"), filepath.Join(s.dir, "data"), filepath.Join(s.dir, "server.log"))
	if s.cred != nil {
		cmd = "su " + s.user + " -s /bin/sh -c '" + cmd + "'"
	}
	return fmt.Sprintf("%s; psql 'postgres://postgres@127.0.0.1:%d/postgres'", cmd, s.port)
}

// URL is the admin URL of the server.
func (s *pgServer) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

// restart crashes the server (immediate mode: no checkpoint, recovery from
// the WAL at start), keeps it down for outage, and starts it again.
func (s *pgServer) restart(outage time.Duration) error {
	data := filepath.Join(s.dir, "data")
	if out, err := s.command("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, lastLines(out, 3))
	}
	time.Sleep(outage)
	var err error
	for range 3 {
		var out []byte
		out, err = s.command("pg_ctl", "-D", data, "-l", filepath.Join(s.dir, "server.log"), "-w", "-t", "120", "start").CombinedOutput()
		if err == nil {
			return nil
		}
		err = fmt.Errorf("pg_ctl start: %v: %s", err, lastLines(out, 3))
		time.Sleep(time.Second)
	}
	return err
}

// close stops the server and removes its directory, unless keep.
func (s *pgServer) close(keep bool) {
	if s.stdin == nil {
		return
	}
	if keep {
		_, _ = io.WriteString(s.stdin, "keep\n")
	}
	_ = s.stdin.Close()
	done := make(chan struct{})
	go func() { _ = s.supervisor.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// scratchDB is a database the suite created and drops at the end.
type scratchDB struct {
	admin *sql.DB
	name  string
	url   string
}

// createScratchDB creates a new database on the server at serverURL.
func createScratchDB(ctx context.Context, serverURL string) (*scratchDB, error) {
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("-postgres-url: want postgres://user@host:port/db, got %q", redact(serverURL))
	}
	admin, err := sql.Open("pgx", serverURL)
	if err != nil {
		return nil, err
	}
	admin.SetMaxOpenConns(2)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := admin.PingContext(pctx); err != nil {
		admin.Close()
		return nil, fmt.Errorf("connect to PostgreSQL %s: %w", redact(serverURL), err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "cqrschaos_" + strconv.FormatInt(time.Now().Unix(), 36) + "_" + hex.EncodeToString(b[:])
	// name is [a-z0-9_] only: no quoting needed.
	for attempt := range 5 {
		_, err = admin.ExecContext(ctx, "CREATE DATABASE "+name)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "55006" { // 55006: template1 busy; retry
			break
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
	if err != nil {
		admin.Close()
		return nil, fmt.Errorf("create database %s on %s: %w", name, redact(serverURL), err)
	}
	u.Path = "/" + name
	return &scratchDB{admin: admin, name: name, url: u.String()}, nil
}

// drop drops the database, ending its connections.
func (d *scratchDB) drop(ctx context.Context) error {
	defer d.admin.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err := d.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+d.name+" WITH (FORCE)")
	return err
}

// redact hides a URL's password.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
