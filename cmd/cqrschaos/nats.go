//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsServer is the suite's own nats-server process with JetStream, on a
// free port with its own store directory, so stopping it disturbs nobody.
type natsServer struct {
	bin  string
	dir  string // JetStream store directory
	log  string
	port int

	cmd  *exec.Cmd
	done chan struct{}
}

// findNATSServer returns the nats-server binary: flag, PATH, then
// /usr/sbin/nats-server.
func findNATSServer(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	const debian = "/usr/sbin/nats-server"
	if fi, err := os.Stat(debian); err == nil && fi.Mode()&0o111 != 0 {
		return debian, nil
	}
	return "", errors.New("nats-server not found on PATH or at /usr/sbin/nats-server (install it, or pass -nats-server, or use -embedded)")
}

func newNATSServer(bin, workDir string) (*natsServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return &natsServer{bin: bin, dir: filepath.Join(workDir, "nats"), log: filepath.Join(workDir, "nats-server.log"), port: port}, nil
}

// URL is the server's client URL.
func (n *natsServer) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

// start starts the server and waits until JetStream answers.
func (n *natsServer) start(ctx context.Context) error {
	cmd := exec.Command(n.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(n.port), "-js", "-sd", n.dir, "-l", n.log)
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.bin, err)
	}
	n.cmd, n.done = cmd, make(chan struct{})
	done := n.done
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := n.ping(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("nats-server exited at start (%s); see %s", cmd.ProcessState, n.log)
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("nats-server on port %d not ready: %v; see %s", n.port, err, n.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ping connects and asks JetStream for the account's state.
func (n *natsServer) ping(ctx context.Context) error {
	nc, err := nats.Connect(n.URL(), nats.Timeout(time.Second), nats.MaxReconnects(0))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}

// stop stops the server gracefully (SIGTERM, as a service manager does),
// killing it after 20s.
func (n *natsServer) stop() {
	if n.cmd == nil {
		return
	}
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(20 * time.Second):
		_ = n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.done
	}
}
