package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// env is what every scenario shares: the configuration, the broker, a
// temporary directory, and a way to get fresh storage.
type env struct {
	cfg    config
	sizes  sizes
	stderr io.Writer
	// log receives the framework's warnings and errors; quiet receives
	// nothing (components whose errors the scenario returns itself).
	log, quiet *slog.Logger
	// runID makes names unique to this run on shared servers.
	runID string
	tmp   string

	natsURL    string   // with broker nats
	kafka      []string // with broker kafka: the in-process cluster
	brokerWhat string
	pgVersion  string

	closers []func() error
}

func newEnv(ctx context.Context, cfg config, stderr io.Writer) (_ *env, err error) {
	e := &env{
		cfg: cfg, sizes: cfg.sizes, stderr: stderr,
		log:   slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		quiet: slog.New(slog.DiscardHandler),
		runID: randomID(),
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.close())
		}
	}()
	if e.tmp, err = os.MkdirTemp("", "cqrsbench-"); err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() error { return os.RemoveAll(e.tmp) })

	if cfg.store == "postgres" {
		if e.pgVersion, err = pgVersion(ctx, cfg.postgresURL); err != nil {
			return nil, err
		}
	}
	if !e.needsBroker() {
		e.brokerWhat = "none"
		return e, nil
	}
	switch {
	case cfg.broker == "kafka":
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, rawKafkaTopic))
		if err != nil {
			return nil, fmt.Errorf("in-process Kafka (kfake): %w", err)
		}
		e.closers = append(e.closers, func() error { c.Close(); return nil })
		e.kafka = c.ListenAddrs()
		e.brokerWhat = "Kafka (in-process kfake)"
	case cfg.natsURL != "":
		e.natsURL = cfg.natsURL
		v, err := natsServerVersion(cfg.natsURL)
		if err != nil {
			return nil, err
		}
		e.brokerWhat = "NATS JetStream " + redact(cfg.natsURL) + " (nats-server " + v + ")"
	default:
		dir := filepath.Join(e.tmp, "nats")
		srv, err := server.NewServer(&server.Options{ServerName: "cqrsbench", Host: "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
		if err != nil {
			return nil, fmt.Errorf("in-process NATS server: %w", err)
		}
		srv.Start()
		e.closers = append(e.closers, func() error { srv.Shutdown(); srv.WaitForShutdown(); return nil })
		if !srv.ReadyForConnections(30 * time.Second) {
			return nil, errors.New("in-process NATS server not ready within 30s")
		}
		e.natsURL = srv.ClientURL()
		e.brokerWhat = "NATS JetStream (in-process nats-server " + server.VERSION + ", file storage)"
	}
	return e, nil
}

// natsServerVersion connects to url and returns the server's version.
func natsServerVersion(url string) (string, error) {
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		return "", fmt.Errorf("connect to NATS %s: %w", redact(url), err)
	}
	defer nc.Close()
	return nc.ConnectedServerVersion(), nil
}

// needsBroker reports whether a selected scenario publishes.
func (e *env) needsBroker() bool {
	return e.cfg.selected("drain") || e.cfg.selected("latency")
}

// close releases everything newEnv started, in reverse order.
func (e *env) close() error {
	var errs []error
	for i := len(e.closers) - 1; i >= 0; i-- {
		errs = append(errs, e.closers[i]())
	}
	e.closers = nil
	return errors.Join(errs...)
}

// scratch is fresh, empty storage for one scenario: a PostgreSQL database
// created for it, or a directory for an SQLite file.
type scratch struct {
	// url connects to the scratch database (PostgreSQL only).
	url string
	// dir is an empty directory of the scenario's own (both stores).
	dir  string
	drop func() error
}

// newScratch creates the scenario's storage. Call drop when done.
func (e *env) newScratch(ctx context.Context, name string) (*scratch, error) {
	dir, err := os.MkdirTemp(e.tmp, name+"-")
	if err != nil {
		return nil, err
	}
	s := &scratch{dir: dir, drop: func() error { return os.RemoveAll(dir) }}
	if e.cfg.store != "postgres" {
		return s, nil
	}
	dbName := "cqrsbench_" + e.runID + "_" + name
	admin, err := sql.Open("pgx", e.cfg.postgresURL)
	if err != nil {
		return nil, err
	}
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+dbName); err != nil {
		admin.Close()
		return nil, fmt.Errorf("create scratch database %s on %s: %w", dbName, redact(e.cfg.postgresURL), err)
	}
	u, err := url.Parse(e.cfg.postgresURL)
	if err != nil {
		admin.Close()
		return nil, err
	}
	u.Path = "/" + dbName
	s.url = u.String()
	s.drop = func() error {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)")
		if err != nil {
			err = fmt.Errorf("drop scratch database %s: %w", dbName, err)
		}
		return errors.Join(err, os.RemoveAll(dir))
	}
	return s, nil
}

func pgVersion(ctx context.Context, u string) (string, error) {
	db, err := sql.Open("pgx", u)
	if err != nil {
		return "", err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var v string
	err = db.QueryRowContext(ctx, `SELECT 'PostgreSQL ' || current_setting('server_version') ||
		', fsync=' || current_setting('fsync') || ', synchronous_commit=' || current_setting('synchronous_commit') ||
		', shared_buffers=' || current_setting('shared_buffers')`).Scan(&v)
	if err != nil {
		return "", fmt.Errorf("connect to PostgreSQL %s (set -postgres-url or CQRSKIT_TEST_POSTGRES_URL, or use -store=sqlite): %w", redact(u), err)
	}
	return v, nil
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// redact hides a URL's password.
func redact(s string) string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		u, err := url.Parse(strings.TrimSpace(part))
		if err != nil {
			out = append(out, "(unparsable URL)")
			continue
		}
		out = append(out, u.Redacted())
	}
	return strings.Join(out, ",")
}
