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
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/cqrskit/cqrskit/sample/infra"
)

func main() {
	err := infra.Main(os.Args[1:], os.Getenv, nil)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	default:
		// 1 also tells a container runtime that a --probe failed.
		fmt.Fprintln(os.Stderr, "sample:", err)
		os.Exit(1)
	}
}
