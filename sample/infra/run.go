package infra

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"
)

// Main is the sample command: it parses args (flags, with getenv for
// their environment variables), answers --probe, or runs the service until
// SIGINT or SIGTERM. configure, if not nil, changes the Config before the
// service starts; a command that embeds the sample uses it for what no
// flag sets (see Config.DecorateProducts). The error is flag.ErrHelp after
// --help.
func Main(args []string, getenv func(string) string, configure func(*Config)) error {
	fs, flags := NewFlagSet("sample", getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q; see --help", fs.Args())
	}
	if flags.Probe != "" {
		return Probe(context.Background(), flags.Probe)
	}
	cfg, err := flags.Config()
	if err != nil {
		return err
	}
	if configure != nil {
		configure(&cfg)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, cfg)
}

// Run starts the service, serves HTTP on cfg.Addr until ctx ends, then
// shuts down gracefully: /readyz turns 503, the server stops taking
// connections and finishes the requests in flight, and the service closes
// (see App.Close), all within cfg.ShutdownTimeout.
func Run(ctx context.Context, cfg Config) error {
	a, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	// Export failures (an OTLP collector away) are logged, not printed.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { a.log.Warn("opentelemetry", "error", err) }))
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		_ = a.Close(context.WithoutCancel(ctx))
		return fmt.Errorf("listen on %s: %w", a.cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	a.log.Info(fmt.Sprintf("cqrskit sample listening on %s (%s)", listenURL(ln.Addr()), a.Describe()))

	select {
	case <-ctx.Done():
	case err := <-served: // the listener failed
		_ = a.Close(context.WithoutCancel(ctx))
		return fmt.Errorf("serve HTTP: %w", err)
	}
	a.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	a.SetNotReady()
	err = srv.Shutdown(sctx)
	if err != nil {
		err = fmt.Errorf("shut down HTTP server: %w", err)
	}
	err = errors.Join(err, a.Close(sctx))
	if err == nil {
		a.log.Info("stopped")
	}
	return err
}

// listenURL is the address to point a browser or curl at.
func listenURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Probe GETs url and returns nil on a 200: the health check of images
// without curl or wget (see --probe).
func Probe(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: %s", url, resp.Status)
	}
	return nil
}
