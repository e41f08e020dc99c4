//go:build unix

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the command line.
type options struct {
	duration     time.Duration
	settle       time.Duration
	outage       time.Duration
	kills        int
	natsRestarts int
	pgRestarts   int
	embedded     bool

	postgresURL  string
	pgRestart    bool
	pgRestartCmd string
	pgBin        string
	natsServer   string
	sampleBin    string

	apis, relays, workers int
	clients, rate         int
	products              int
	threshold             int64

	seed    int64
	workDir string
	keep    bool
	verbose bool
}

// DefaultPGRestartCmd restarts the machine's PostgreSQL 15 cluster on
// Debian; only used with -postgres-url and -pg-restart.
const DefaultPGRestartCmd = "pg_ctlcluster --skip-systemctl-redirect 15 main restart"

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("cqrschaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./cmd/cqrschaos [flags]\n\n"+
			"Runs the sample's api, relay and worker roles as processes, drives commands over\n"+
			"HTTP, injects faults (SIGKILL, NATS and PostgreSQL restarts, a poison event) and\n"+
			"checks that nothing was lost or applied twice. See docs/RELIABILITY.md.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.DurationVar(&o.duration, "duration", 60*time.Second, "how long commands run and faults are injected")
	fs.DurationVar(&o.settle, "settle", 2*time.Minute, "how long to wait after the load for the outbox to drain and the read models to catch up")
	fs.DurationVar(&o.outage, "outage", 3*time.Second, "how long NATS or PostgreSQL stays down in a restart")
	fs.IntVar(&o.kills, "kills", 20, "SIGKILLs of api, relay and worker processes, at random moments")
	fs.IntVar(&o.natsRestarts, "nats-restarts", 1, "stops and restarts of the NATS server (not with -embedded)")
	fs.IntVar(&o.pgRestarts, "pg-restarts", -1, "restarts of PostgreSQL; default 1 with the private server (or -pg-restart), else 0")
	fs.BoolVar(&o.embedded, "embedded", false, "run the single-process default: --role=all with SQLite and in-process NATS")
	fs.StringVar(&o.postgresURL, "postgres-url", "", "a PostgreSQL server (a user that may CREATE DATABASE) to make a scratch database on; default: a private server from initdb/pg_ctl")
	fs.BoolVar(&o.pgRestart, "pg-restart", false, "with -postgres-url: restart that server as a fault by running -pg-restart-cmd (disturbs its other users)")
	fs.StringVar(&o.pgRestartCmd, "pg-restart-cmd", DefaultPGRestartCmd, "shell command that restarts the -postgres-url server (with -pg-restart)")
	fs.StringVar(&o.pgBin, "pg-bin", "", "directory of initdb and pg_ctl; default: PATH, else the newest /usr/lib/postgresql/*/bin")
	fs.StringVar(&o.natsServer, "nats-server", "", "the nats-server binary; default: PATH, else /usr/sbin/nats-server")
	fs.StringVar(&o.sampleBin, "sample-bin", "", "a built binary of ./cmd/cqrschaos/internal/poisoned (the sample with the poison hook) to run instead of building it")
	fs.IntVar(&o.apis, "apis", 1, "API processes")
	fs.IntVar(&o.relays, "relays", 2, "relay processes (one active, the others standbys)")
	fs.IntVar(&o.workers, "workers", 2, "worker processes (sharing the consumer groups)")
	fs.IntVar(&o.clients, "clients", 8, "concurrent HTTP clients")
	fs.IntVar(&o.rate, "rate", 200, "at most this many commands per second, all clients together")
	fs.IntVar(&o.products, "products", 40, "products the clients keep working on")
	fs.Int64Var(&o.threshold, "low-stock-threshold", 5, "the sample's low-stock threshold")
	fs.Int64Var(&o.seed, "seed", 0, "random seed of the fault schedule and the load; 0: from the clock")
	fs.StringVar(&o.workDir, "work-dir", "", "directory for the binary, logs and data; default: a new temporary directory")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory and the scratch database (they are kept anyway when a check fails)")
	fs.BoolVar(&o.verbose, "v", false, "print every fault and process exit as it happens")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.duration < 5*time.Second {
		bad("-duration %s: want at least 5s", o.duration)
	}
	if o.settle < 10*time.Second {
		bad("-settle %s: want at least 10s", o.settle)
	}
	if o.outage < 0 {
		bad("-outage %s: must not be negative", o.outage)
	}
	if o.kills < 0 || o.natsRestarts < 0 {
		bad("-kills and -nats-restarts must not be negative")
	}
	if o.apis < 1 || o.relays < 1 || o.workers < 1 || o.clients < 1 || o.rate < 1 || o.products < 1 {
		bad("-apis, -relays, -workers, -clients, -rate and -products must be at least 1")
	}
	if o.threshold < 1 {
		bad("-low-stock-threshold %d: want at least 1", o.threshold)
	}
	if o.embedded {
		if o.postgresURL != "" || o.pgRestart {
			bad("-embedded runs SQLite: -postgres-url and -pg-restart do not apply")
		}
		o.natsRestarts, o.apis, o.relays, o.workers = 0, 1, 0, 0
		if o.pgRestarts > 0 {
			bad("-embedded runs SQLite: -pg-restarts does not apply")
		}
		o.pgRestarts = 0
	}
	if o.pgRestart && o.postgresURL == "" {
		bad("-pg-restart applies to a -postgres-url server; the private server is restarted anyway")
	}
	switch {
	case o.pgRestarts >= 0:
		if o.pgRestarts > 0 && o.postgresURL != "" && !o.pgRestart {
			bad("-pg-restarts %d with -postgres-url: also pass -pg-restart to allow restarting that server", o.pgRestarts)
		}
	case o.postgresURL == "" || o.pgRestart:
		o.pgRestarts = 1
	default:
		o.pgRestarts = 0
	}
	if o.seed == 0 {
		o.seed = time.Now().UnixNano()
	}
	return o, errors.Join(errs...)
}

// run runs the suite and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "cqrschaos:", err)
		fmt.Fprintln(stderr, "see go run ./cmd/cqrschaos -help")
		return 2
	}
	s := newSuite(o, stdout)
	res, err := s.run(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "cqrschaos:", err)
		return 1
	}
	fmt.Fprintf(stdout, "cqrschaos: %d commands, %d faults, %d lost, %d duplicated\n", res.commands, res.faults, res.lost, res.dup)
	if !res.ok() {
		return 1
	}
	return 0
}
