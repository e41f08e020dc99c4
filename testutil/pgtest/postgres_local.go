//go:build unix

package pgtest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/cqrskit/cqrskit/internal/pglocal"
)

// The local provider starts one throw-away server per test process.
var local struct {
	once sync.Once
	url  string
	err  error
	// stdin is the supervisor's stdin. It is never written or closed: the
	// kernel closes it when this process exits, which tells the
	// supervisor to stop the server and remove its directory. Keeping it
	// here also keeps the *os.File's finalizer from closing it early.
	stdin io.WriteCloser
}

// localServer returns the admin URL of this process's ephemeral server,
// starting it on first use.
func localServer() (string, error) {
	local.once.Do(func() { local.url, local.err = startLocalServer() })
	return local.url, local.err
}

// supervisor starts the server, reports "ready", then waits for EOF on
// stdin (this process has exited) and removes everything. Arguments: dir,
// port, pg_ctl.
const supervisor = `
"$3" -D "$1/data" -l "$1/server.log" -w -t 120 \
  -o "-p $2 -k $1 -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=300" \
  start >"$1/pg_ctl.log" 2>&1 || { echo failed; exit 1; }
echo ready
read -r _
"$3" -D "$1/data" -m immediate -w stop >/dev/null 2>&1
rm -rf "$1"
`

func startLocalServer() (string, error) {
	bin, err := pglocal.FindBin("")
	if err != nil {
		return "", err
	}
	cred, _, err := pglocal.Credential()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "cqrskit-pg-")
	if err != nil {
		return "", err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return "", err
		}
	}
	run := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "LC_ALL=C", "LANG=C"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
		return cmd
	}

	out, err := run(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"),
		"-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("initdb in %s: %v: %s", dir, err, lastLines(out, 5))
	}

	var lastErr error
	for range 3 { // a free port can be taken before the server binds it
		port, err := freePort()
		if err != nil {
			return "", err
		}
		cmd := run("/bin/sh", "-c", supervisor, "sh", dir, strconv.Itoa(port), filepath.Join(bin, "pg_ctl"))
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return "", err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return "", err
		}
		if err := cmd.Start(); err != nil {
			return "", fmt.Errorf("start pg_ctl supervisor: %w", err)
		}
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		if strings.TrimSpace(line) == "ready" {
			local.stdin = stdin
			ok = true
			return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), nil
		}
		_ = cmd.Wait()
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		lastErr = fmt.Errorf("pg_ctl start on port %d failed: %s", port, lastLines(log, 5))
	}
	return "", lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
