//go:build unix

package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// proc is one sample process under supervision: it is started again after
// it exits, whether the suite killed it or it died by itself, until stop.
type proc struct {
	name string // "worker-2"
	role string
	addr string // its HTTP address, 127.0.0.1:port
	bin  string
	args []string
	env  []string
	log  *os.File
	say  func(format string, args ...any)

	mu         sync.Mutex
	cmd        *exec.Cmd
	done       chan struct{} // closed when cmd has exited
	stopping   bool
	killed     bool // the running process got our SIGKILL
	starts     int
	kills      int
	unexpected int    // exits the suite did not cause
	lastExit   string // how the last unexpected exit ended
	up         chan struct{}
	supervised chan struct{} // closed when supervise returns
}

func newProc(name, role, addr, bin string, args, env []string, log *os.File, say func(string, ...any)) *proc {
	return &proc{name: name, role: role, addr: addr, bin: bin, args: args, env: env, log: log, say: say,
		up: make(chan struct{}), supervised: make(chan struct{})}
}

// start starts the process once.
func (p *proc) start() error {
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = sysProcAttr()
	fmt.Fprintf(p.log, "\n=== cqrschaos: start %s at %s\n", p.name, time.Now().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	p.mu.Lock()
	p.cmd, p.done, p.killed = cmd, done, false
	p.starts++
	close(p.up)
	p.mu.Unlock()
	return nil
}

// supervise keeps the process running until stop. pause is the time
// between an exit and the next start.
func (p *proc) supervise(pause func() time.Duration) {
	defer close(p.supervised)
	for {
		if err := p.start(); err != nil {
			p.say("%s: %v", p.name, err)
			p.mu.Lock()
			p.up = make(chan struct{})
			p.mu.Unlock()
			time.Sleep(time.Second)
		} else {
			p.mu.Lock()
			done := p.done
			p.mu.Unlock()
			<-done
			p.mu.Lock()
			state := p.cmd.ProcessState
			if !p.killed && !p.stopping {
				p.unexpected++
				p.lastExit = state.String()
				p.say("%s exited by itself (%s); restarting", p.name, state)
			}
			p.up = make(chan struct{})
			p.mu.Unlock()
		}
		p.mu.Lock()
		stopping := p.stopping
		p.mu.Unlock()
		if stopping {
			return
		}
		time.Sleep(pause())
		p.mu.Lock()
		stopping = p.stopping
		p.mu.Unlock()
		if stopping {
			return
		}
	}
}

// kill SIGKILLs the running process, waiting up to wait for it to be
// running first (a process killed before counts only once it has been
// started again). It reports whether a live process got the signal.
func (p *proc) kill(wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for {
		p.mu.Lock()
		if p.stopping {
			p.mu.Unlock()
			return false
		}
		up := p.up
		select {
		case <-up:
			select {
			case <-p.done:
				// Exited; the supervisor is about to notice.
			default:
				if p.killed {
					break // dying from an earlier SIGKILL: wait for the next one
				}
				err := p.cmd.Process.Signal(syscall.SIGKILL)
				if err == nil {
					p.killed = true
					p.kills++
					p.mu.Unlock()
					return true
				}
			}
		default:
		}
		p.mu.Unlock()
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends supervision and the process: SIGTERM, then SIGKILL after
// grace.
func (p *proc) stop(grace time.Duration) {
	p.mu.Lock()
	p.stopping = true
	var done chan struct{}
	select {
	case <-p.up:
		done = p.done
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	default:
	}
	p.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-time.After(grace):
			p.say("%s did not stop within %s of SIGTERM; killing it", p.name, grace)
			p.mu.Lock()
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			p.mu.Unlock()
			<-done
		}
	}
	<-p.supervised
}

// ready waits until the process answers /readyz with 200.
func (p *proc) ready(ctx context.Context, timeout time.Duration) error {
	return waitHTTP(ctx, "http://"+p.addr+"/readyz", timeout)
}

// waitHTTP polls url until it answers 200 or timeout passes.
func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("%s answers %s", url, resp.Status)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %s: %v", url, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
