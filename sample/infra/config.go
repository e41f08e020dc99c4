package infra

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/cqrskit/cqrskit/handler"
)

// Role selects what one process runs, so the API, the relay and the
// consumers can be scaled separately.
type Role string

const (
	// RoleAll runs everything in one process: the default.
	RoleAll Role = "all"
	// RoleAPI serves the HTTP API: commands append to the store and its
	// outbox, queries read the read models.
	RoleAPI Role = "api"
	// RoleRelay moves the outbox to the broker.
	RoleRelay Role = "relay"
	// RoleWorker runs the consumers (products read model, low-stock
	// alerts) and the stats projection.
	RoleWorker Role = "worker"
)

// The values of Config.Store.
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
)

// Roles lists every role the binary accepts.
var Roles = []Role{RoleAll, RoleAPI, RoleRelay, RoleWorker}

func (r Role) runsAPI() bool    { return r == RoleAll || r == RoleAPI }
func (r Role) runsRelay() bool  { return r == RoleAll || r == RoleRelay }
func (r Role) runsWorker() bool { return r == RoleAll || r == RoleWorker }

// Config is the service's configuration: the flags and environment
// variables of the binary, plus settings for tests.
type Config struct {
	// Role is what this process runs. Defaults to RoleAll.
	Role Role
	// Addr is the HTTP listen address. Every role listens: the relay and
	// worker serve /healthz and /readyz only. Defaults to ":8080".
	Addr string
	// DataDir holds the SQLite database and the in-process NATS server's
	// JetStream files. Defaults to "data".
	DataDir string
	// PostgresURL selects PostgreSQL instead of SQLite.
	PostgresURL string
	// Store, when set, is the store the process must use: StorePostgres
	// makes a missing PostgresURL an error instead of a silent SQLite file
	// (docker-compose.yml sets it: each container's SQLite file would be
	// its own), StoreSQLite makes a PostgresURL one. Empty: PostgreSQL
	// when PostgresURL is set, else SQLite.
	Store string
	// NATSURL selects an external NATS server with JetStream instead of the
	// in-process one.
	NATSURL string
	// KafkaBrokers selects Kafka as the broker instead of NATS.
	KafkaBrokers []string
	// LowStockThreshold raises an alert when a product's stock falls below
	// it. Defaults to 5.
	LowStockThreshold int64
	// LogLevel is the level of the service's own logs; the framework's
	// components log warnings and errors only, unless it is debug.
	// Defaults to info.
	LogLevel slog.Level

	// The settings below have no flags; tests use them.

	// NATSStream and NATSSubjectPrefix name the JetStream stream and its
	// subjects. Default to "CQRSKIT" and "cqrskit".
	NATSStream, NATSSubjectPrefix string
	// TablePrefix prefixes the framework's tables. Defaults to "cqrs_".
	TablePrefix string
	// PostgresMaxConns caps the PostgreSQL connection pool. Defaults to 20.
	PostgresMaxConns int
	// DecorateProducts, if not nil, wraps the products read model's event
	// function: for instrumentation, or fault injection (cmd/cqrschaos
	// makes one event a poison event). No flag sets it.
	DecorateProducts func(handler.Func) handler.Func
	// ConsumerConcurrency is how many deliveries each consumer handles at
	// once, each product's in order (messagebus.WithConcurrency); those in
	// hand at one moment commit in one transaction. Defaults to 16.
	ConsumerConcurrency int
	// ReadYourWritesTimeout bounds GET ?min_version. Defaults to 5s.
	ReadYourWritesTimeout time.Duration
	// MaxBodyBytes limits request bodies. Defaults to 64 KiB.
	MaxBodyBytes int64
	// ShutdownTimeout bounds a graceful shutdown. Defaults to 15s.
	ShutdownTimeout time.Duration
	// Logger, when set, is used instead of a text logger on stderr at
	// LogLevel.
	Logger *slog.Logger
	// SpanExporter, when set, receives every span the service records, as
	// it ends, besides the OTLP export (for tests: an in-memory exporter).
	SpanExporter sdktrace.SpanExporter
}

// Env names the environment variable behind each flag. A flag given on the
// command line wins over its variable.
var Env = map[string]string{
	"role":                "CQRSKIT_ROLE",
	"addr":                "CQRSKIT_ADDR",
	"data-dir":            "CQRSKIT_DATA_DIR",
	"postgres-url":        "CQRSKIT_POSTGRES_URL",
	"store":               "CQRSKIT_STORE",
	"nats-url":            "CQRSKIT_NATS_URL",
	"kafka-brokers":       "CQRSKIT_KAFKA_BROKERS",
	"low-stock-threshold": "CQRSKIT_LOW_STOCK_THRESHOLD",
	"log-level":           "CQRSKIT_LOG_LEVEL",
}

// Defaults of the flags.
const (
	DefaultAddr      = ":8080"
	DefaultDataDir   = "data"
	DefaultThreshold = 5
)

// Flags holds the values of the command line, bound by NewFlagSet.
type Flags struct {
	role, addr, dataDir, postgresURL, store, natsURL, kafkaBrokers, threshold, logLevel string
	// Probe, when set, makes the binary GET this URL and exit 0 on a 200:
	// the health check of images without curl.
	Probe string
}

// NewFlagSet returns the binary's flag set, each flag's default taken from
// its environment variable (through getenv) when set. Parse args with it,
// then call Flags.Config.
func NewFlagSet(name string, getenv func(string) string) (*flag.FlagSet, *Flags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	f := &Flags{}
	str := func(dst *string, name, def, usage string) {
		env := Env[name]
		if v := getenv(env); v != "" {
			def = v
		}
		fs.StringVar(dst, name, def, usage+" (env "+env+")")
	}
	str(&f.role, "role", string(RoleAll), "what this process runs: all, api, relay or worker")
	str(&f.addr, "addr", DefaultAddr, "HTTP listen address; every role serves /healthz and /readyz")
	str(&f.dataDir, "data-dir", DefaultDataDir, "directory of the SQLite database and the in-process NATS server's files")
	str(&f.postgresURL, "postgres-url", "", "PostgreSQL URL; empty: SQLite in the data directory")
	str(&f.store, "store", "", "sqlite or postgres: the store this process must use, so a missing or stray --postgres-url is an error; empty: postgres when --postgres-url is set, else sqlite")
	str(&f.natsURL, "nats-url", "", "NATS server URL with JetStream; empty: an in-process server (role all only)")
	str(&f.kafkaBrokers, "kafka-brokers", "", "comma-separated Kafka brokers (host:port); use Kafka instead of NATS")
	str(&f.threshold, "low-stock-threshold", strconv.Itoa(DefaultThreshold), "raise a low-stock alert when a product's stock falls below this")
	str(&f.logLevel, "log-level", "info", "debug, info, warn or error; debug also shows the framework's own logs")
	fs.StringVar(&f.Probe, "probe", "", "GET this URL, exit 0 on 200 and 1 otherwise (container health checks)")
	return fs, f
}

// Config turns the parsed flags into a validated Config.
func (f *Flags) Config() (Config, error) {
	c := Config{
		Role:        Role(strings.TrimSpace(f.role)),
		Addr:        f.addr,
		DataDir:     f.dataDir,
		PostgresURL: f.postgresURL,
		Store:       strings.TrimSpace(f.store),
		NATSURL:     f.natsURL,
	}
	var errs []error
	for b := range strings.SplitSeq(f.kafkaBrokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			c.KafkaBrokers = append(c.KafkaBrokers, b)
		}
	}
	n, err := strconv.ParseInt(f.threshold, 10, 64)
	if err != nil || n < 0 {
		errs = append(errs, fmt.Errorf("--low-stock-threshold %q: want an integer >= 0", f.threshold))
	}
	c.LowStockThreshold = n
	if err := c.LogLevel.UnmarshalText([]byte(f.logLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel))
	}
	if err := errors.Join(append(errs, c.validate())...); err != nil {
		return Config{}, err
	}
	return c.withDefaults(), nil
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.Role == "" {
		c.Role = RoleAll
	}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.LowStockThreshold == 0 {
		c.LowStockThreshold = DefaultThreshold
	}
	if c.NATSStream == "" {
		c.NATSStream = "CQRSKIT"
	}
	if c.NATSSubjectPrefix == "" {
		c.NATSSubjectPrefix = "cqrskit"
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
	if c.PostgresMaxConns == 0 {
		c.PostgresMaxConns = 20
	}
	if c.ConsumerConcurrency == 0 {
		c.ConsumerConcurrency = 16
	}
	return c
}

// validate reports every problem of c; zero fields are fine (defaults).
func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	role := c.Role
	if role == "" {
		role = RoleAll
	}
	known := false
	for _, r := range Roles {
		known = known || r == role
	}
	if !known {
		bad("--role %q: want all, api, relay or worker", c.Role)
	}
	if c.Addr != "" {
		if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
			bad("--addr %q: want host:port or :port", c.Addr)
		}
	}
	if c.PostgresURL != "" {
		if u, err := url.Parse(c.PostgresURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			bad("--postgres-url: want postgres://user:password@host:5432/db")
		}
	}
	switch c.Store {
	case "":
	case StorePostgres:
		if c.PostgresURL == "" {
			bad("--store=postgres and no --postgres-url (env CQRSKIT_POSTGRES_URL): want postgres://user:password@host:5432/db")
		}
	case StoreSQLite:
		if c.PostgresURL != "" {
			bad("--store=sqlite and --postgres-url: choose one store")
		}
	default:
		bad("--store %q: want sqlite or postgres", c.Store)
	}
	if c.NATSURL != "" && len(c.KafkaBrokers) > 0 {
		bad("--nats-url and --kafka-brokers: choose one broker")
	}
	if c.NATSURL != "" {
		for u := range strings.SplitSeq(c.NATSURL, ",") {
			if pu, err := url.Parse(strings.TrimSpace(u)); err != nil || pu.Host == "" {
				bad("--nats-url %q: want nats://host:4222", u)
			}
		}
	}
	for _, b := range c.KafkaBrokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			bad("--kafka-brokers: %q: want host:port", b)
		}
	}
	if (role == RoleRelay || role == RoleWorker) && c.NATSURL == "" && len(c.KafkaBrokers) == 0 {
		bad("--role=%s needs --nats-url or --kafka-brokers: the in-process NATS server lives inside one process, so only --role=all can use it", role)
	}
	if c.LowStockThreshold < 0 {
		bad("--low-stock-threshold %d: must be >= 0", c.LowStockThreshold)
	}
	if c.ReadYourWritesTimeout < 0 || c.MaxBodyBytes < 0 || c.ShutdownTimeout < 0 || c.PostgresMaxConns < 0 || c.ConsumerConcurrency < 0 {
		bad("ReadYourWritesTimeout, MaxBodyBytes, ShutdownTimeout, PostgresMaxConns and ConsumerConcurrency must not be negative")
	}
	return errors.Join(errs...)
}

// usesSQLite reports whether the store is the embedded default.
func (c Config) usesSQLite() bool { return c.PostgresURL == "" }

// sqlitePath is the database file in the data directory.
func (c Config) sqlitePath() string { return filepath.Join(c.DataDir, "cqrskit.db") }

// natsDir is the in-process NATS server's JetStream directory.
func (c Config) natsDir() string { return filepath.Join(c.DataDir, "nats") }
