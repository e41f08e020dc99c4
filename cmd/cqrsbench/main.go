package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program: parse args, run the scenarios, write the
// reports. It returns the exit code: 0 after every scenario ran, 1 when one
// failed, 2 on bad usage. A missed target is a result, not a failure.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, os.Getenv, stderr)
	if err != nil {
		if errors.Is(err, errHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "cqrsbench:", err)
		return 2
	}
	if err := runBench(ctx, cfg, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "cqrsbench:", err)
		return 1
	}
	return 0
}
