// Command sample runs the Product service: a complete cqrskit application
// with an HTTP API, an event store with a transactional outbox, a relay to
// a broker, two idempotent consumers and a rebuildable projection.
//
//	go run ./sample                    # SQLite + in-process NATS in ./data, HTTP on :8080
//	go run ./sample --postgres-url=postgres://... --nats-url=nats://...
//	go run ./sample --role=api|relay|worker ...   # one part per process
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 go run ./sample   # also export traces and metrics over OTLP
//
// Every role serves Prometheus metrics at GET /metrics. See the infra
// package for the flags and their environment variables, and for the
// telemetry.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cqrskit/cqrskit/sample/infra"
)

func main() {
	err := run(os.Args[1:])
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	default:
		// 1 also tells a container runtime that a --probe failed.
		fmt.Fprintln(os.Stderr, "sample:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs, flags := infra.NewFlagSet("sample", os.Getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q; see --help", fs.Args())
	}
	if flags.Probe != "" {
		return infra.Probe(context.Background(), flags.Probe)
	}
	cfg, err := flags.Config()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return infra.Run(ctx, cfg)
}
