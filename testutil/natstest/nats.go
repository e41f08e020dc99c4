package natstest

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Environment variables read by Machine.
const (
	// EnvNATSURL names the machine's NATS server with JetStream, for
	// example nats://127.0.0.1:4222. Unset, DefaultMachineURL is tried.
	EnvNATSURL = "CQRSKIT_TEST_NATS_URL"
	// EnvRequireNATS=1 turns a missing machine NATS server from a skip
	// into a failure. CI sets it.
	EnvRequireNATS = "CQRSKIT_REQUIRE_NATS"
)

// Server is an in-process NATS server with JetStream (file storage),
// private to one test. Shutdown and Restart simulate an outage: the server
// comes back on the same port with the same store, so clients reconnect
// and stored messages survive.
type Server struct {
	// URL is the client URL, for example nats://127.0.0.1:41234.
	URL string

	t        testing.TB
	port     int
	storeDir string

	mu  sync.Mutex
	srv *server.Server // nil while shut down
	log *testLogger
}

// testLogger reports the server's warnings and errors in the test log,
// so a failed stream create or a storage error names its cause. It goes
// quiet once the test's cleanup has shut the server down.
type testLogger struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (l *testLogger) logf(level, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Logf("nats-server %s: %s", level, fmt.Sprintf(format, v...))
	}
}

func (l *testLogger) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
}

func (l *testLogger) Noticef(string, ...any)         {}
func (l *testLogger) Debugf(string, ...any)          {}
func (l *testLogger) Tracef(string, ...any)          {}
func (l *testLogger) Warnf(format string, v ...any)  { l.logf("warning", format, v...) }
func (l *testLogger) Errorf(format string, v ...any) { l.logf("error", format, v...) }
func (l *testLogger) Fatalf(format string, v ...any) { l.logf("fatal", format, v...) }

// URL starts an in-process NATS server with JetStream for the test and
// returns its URL. The server stores in a directory under t.TempDir,
// listens on a random port and is shut down at cleanup.
func URL(t testing.TB) string {
	t.Helper()
	return Start(t).URL
}

// Start is URL, returning the server so the test can stop and restart
// it.
func Start(t testing.TB) *Server {
	t.Helper()
	n := &Server{t: t, storeDir: t.TempDir(), log: &testLogger{t: t}}
	srv, err := n.start(-1)
	if err != nil {
		t.Fatalf("natstest: start in-process NATS server: %v", err)
	}
	n.srv = srv
	n.port = srv.Addr().(*net.TCPAddr).Port
	n.URL = fmt.Sprintf("nats://127.0.0.1:%d", n.port)
	t.Cleanup(func() {
		n.Shutdown()
		n.log.stop()
	})
	return n
}

func (n *Server) start(port int) (*server.Server, error) {
	srv, err := server.NewServer(&server.Options{
		ServerName: "cqrskit-test",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   n.storeDir,
		NoLog:      true,
		NoSigs:     true,
	})
	if err != nil {
		return nil, err
	}
	srv.SetLogger(n.log, false, false)
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("server on port %d not ready within 10s", port)
	}
	return srv, nil
}

// Shutdown stops the server and waits until it is down. Clients see a
// disconnect and start reconnecting. Calling it again is a no-op.
func (n *Server) Shutdown() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv == nil {
		return
	}
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.srv = nil
}

// Restart starts the server again on the same port with the same store
// directory; a running server is shut down first. The test fails if the
// server does not come back.
func (n *Server) Restart() {
	n.t.Helper()
	n.Shutdown()
	n.mu.Lock()
	defer n.mu.Unlock()
	var err error
	for range 50 { // the port can linger briefly after shutdown
		var srv *server.Server
		if srv, err = n.start(n.port); err == nil {
			n.srv = srv
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	n.t.Fatalf("natstest: restart NATS server on port %d: %v", n.port, err)
}

// Running reports whether the server is up.
func (n *Server) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv != nil
}

// DefaultMachineURL is where Machine looks for a NATS server when
// CQRSKIT_TEST_NATS_URL is not set: the default client port on loopback.
const DefaultMachineURL = "nats://127.0.0.1:4222"

// natsProbeTimeout bounds the look for a server at the default address,
// which a test without one pays once.
const natsProbeTimeout = 500 * time.Millisecond

// Machine returns the URL of the machine's NATS server with JetStream:
// CQRSKIT_TEST_NATS_URL, or else DefaultMachineURL when a NATS server
// answers there. With neither the test is skipped, with a one-line reason,
// or fails when CQRSKIT_REQUIRE_NATS=1. Tests sharing that server must use
// their own stream and subject names and delete what they create.
func Machine(t testing.TB) string {
	t.Helper()
	return machineNATS(t, os.Getenv, DefaultMachineURL)
}

func machineNATS(t testing.TB, getenv func(string) string, defaultURL string) string {
	t.Helper()
	u, err := resolveMachineNATS(getenv, defaultURL, natsProbeTimeout)
	if err == nil {
		return u
	}
	if getenv(EnvRequireNATS) == "1" {
		t.Fatalf("natstest: %s=1 but no NATS server: %v; start one or set %s", EnvRequireNATS, err, EnvNATSURL)
		return ""
	}
	t.Skipf("skipped: needs the machine's NATS server with JetStream, but %v; start one there or set %s=nats://host:port", err, EnvNATSURL)
	return ""
}

// resolveMachineNATS returns CQRSKIT_TEST_NATS_URL as is, or defaultURL
// when a NATS server answers there within timeout, or why neither.
func resolveMachineNATS(getenv func(string) string, defaultURL string, timeout time.Duration) (string, error) {
	if u := getenv(EnvNATSURL); u != "" {
		return u, nil
	}
	if err := probeNATS(defaultURL, timeout); err != nil {
		return "", fmt.Errorf("%s is not set and %s does not answer (%v)", EnvNATSURL, defaultURL, err)
	}
	return defaultURL, nil
}

// probeNATS dials the server at url and reads the INFO line a NATS server
// greets every client with, so a port held by something else is not taken
// for NATS.
func probeNATS(rawURL string, timeout time.Duration) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("not a nats://host:port URL: %q", rawURL)
	}
	conn, err := net.DialTimeout("tcp", u.Host, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	greeting := make([]byte, 5)
	if _, err := io.ReadFull(conn, greeting); err != nil {
		return fmt.Errorf("no NATS greeting: %w", err)
	}
	if string(greeting) != "INFO " {
		return fmt.Errorf("not a NATS server: it greets with %q", greeting)
	}
	return nil
}
