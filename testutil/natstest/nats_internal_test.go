package natstest

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// listen serves each connection with greeting (none when empty), keeping
// it open until the test ends, and returns its nats:// URL.
func listen(t *testing.T, greeting string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if greeting != "" {
				c.Write([]byte(greeting))
			}
			conns = append(conns, c)
		}
	}()
	return "nats://" + ln.Addr().String()
}

// unreachable returns a nats:// URL on a loopback port nothing listens on.
func unreachable(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "nats://" + addr
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestResolveMachineNATS(t *testing.T) {
	natsLike := listen(t, "INFO {\"server_id\":\"x\"}\r\n")
	silent := listen(t, "")
	other := listen(t, "HTTP/1.1 400 Bad Request\r\n")
	down := unreachable(t)
	tests := []struct {
		name       string
		vars       map[string]string
		defaultURL string
		want       string // "" wants an error containing wantErr
		wantErr    string
	}{
		{"the variable wins, unprobed", map[string]string{EnvNATSURL: "nats://elsewhere:1"}, down, "nats://elsewhere:1", ""},
		{"a server at the default address", nil, natsLike, natsLike, ""},
		{"nothing at the default address", nil, down, "", "does not answer"},
		{"a silent port", nil, silent, "", "no NATS greeting"},
		{"another protocol", nil, other, "", "not a NATS server"},
		{"a bad default", nil, "127.0.0.1", "", "not a nats://host:port URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveMachineNATS(env(tt.vars), tt.defaultURL, 200*time.Millisecond)
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Fatalf("got %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), EnvNATSURL+" is not set") {
				t.Fatalf("got %q, %v; want an error saying %q", got, err, tt.wantErr)
			}
		})
	}
}

// natsTB records how machineNATS gave up.
type natsTB struct {
	*testing.T
	skipped, fatal string
}

func (f *natsTB) Helper() {}
func (f *natsTB) Skipf(format string, args ...any) {
	f.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *natsTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMachineNATSWithoutServer(t *testing.T) {
	down := unreachable(t)
	run := func(vars map[string]string) *natsTB {
		f := &natsTB{T: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			u := machineNATS(f, env(vars), down)
			t.Errorf("machineNATS returned %q without a server", u)
		}()
		<-done
		return f
	}
	f := run(nil)
	if f.fatal != "" || !strings.HasPrefix(f.skipped, "skipped: ") || strings.Contains(f.skipped, "\n") ||
		!strings.Contains(f.skipped, strings.TrimPrefix(down, "nats://")) || !strings.Contains(f.skipped, EnvNATSURL) {
		t.Errorf("without a server: skip %q, fatal %q; want one line naming %s and %s", f.skipped, f.fatal, down, EnvNATSURL)
	}
	f = run(map[string]string{EnvRequireNATS: "1"})
	if f.skipped != "" || !strings.Contains(f.fatal, EnvRequireNATS+"=1") || !strings.Contains(f.fatal, down) {
		t.Errorf("with %s=1: skip %q, fatal %q; want a failure naming %s", EnvRequireNATS, f.skipped, f.fatal, down)
	}
}

func TestMachineNATSFindsDefaultServer(t *testing.T) {
	srv := Start(t)
	f := &natsTB{T: t}
	if got := machineNATS(f, env(nil), srv.URL); got != srv.URL {
		t.Fatalf("machineNATS = %q (skip %q), want the server at %s", got, f.skipped, srv.URL)
	}
}
