package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// errHelp is returned by parseFlags after printing the usage for -h.
var errHelp = flag.ErrHelp

// defaultPostgresURL is used when neither -postgres-url nor
// CQRSKIT_TEST_POSTGRES_URL is set.
const defaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// config is the parsed command line.
type config struct {
	store       string // "postgres" or "sqlite"
	broker      string // "nats" or "kafka"
	postgresURL string // server on which scratch databases are created
	natsURL     string // "" starts an in-process server
	latencyMode string // "min_version" or "poll"
	rate        int    // commands/s of the latency scenario
	only        []string
	quick       bool
	scale       float64
	jsonPath    string
	svgPath     string
	cpuProfile  string
	sizes       sizes
	args        []string // as given, for the report
}

// sizes are the amounts of work of every scenario, per side (framework
// and raw each do this much).
type sizes struct {
	// append: commands per case.
	AppendSingle   int // 1 writer, 1 event per command
	AppendParallel int // 16 writers, 1 event per command
	AppendBatch    int // 16 writers, 100 events per command
	// drain: outbox rows.
	DrainRows int
	// consumer: events.
	ConsumeSingle  int // one per transaction
	ConsumeBatched int // 100 per transaction
	// load: events in the aggregate, and loads of each kind.
	LoadEvents, LoadReplays, LoadSnapshotLoads int
	// latency: commands per second and how long.
	LatencyRate     int
	LatencyDuration time.Duration
	// rebuild: events in the store.
	RebuildEvents int
	// Prefill: events written (and ANALYZEd) before the append and latency
	// scenarios measure on PostgreSQL; see env.steadyState.
	Prefill int
}

// defaultSizes are DESIGN.md's sizes where it names them (100,000 outbox
// rows, a 10,000-event aggregate, 500 commands/s, 1,000,000 events), and
// enough work for a stable rate elsewhere.
func defaultSizes() sizes {
	return sizes{
		AppendSingle: 2_000, AppendParallel: 20_000, AppendBatch: 500,
		DrainRows:     100_000,
		ConsumeSingle: 3_000, ConsumeBatched: 100_000,
		LoadEvents: 10_000, LoadReplays: 20, LoadSnapshotLoads: 1_000,
		LatencyRate: 500, LatencyDuration: 20 * time.Second,
		RebuildEvents: 1_000_000,
		Prefill:       10_000,
	}
}

// quickSizes keep the whole run under two minutes on a 2-core machine.
func quickSizes() sizes {
	return sizes{
		AppendSingle: 400, AppendParallel: 4_000, AppendBatch: 300,
		DrainRows:     10_000,
		ConsumeSingle: 500, ConsumeBatched: 20_000,
		LoadEvents: 2_000, LoadReplays: 5, LoadSnapshotLoads: 100,
		LatencyRate: 500, LatencyDuration: 3 * time.Second,
		RebuildEvents: 20_000,
		Prefill:       10_000,
	}
}

// scaled multiplies every amount by f (the rate stays: it is a target,
// not an amount), keeping each at a workable minimum.
func (s sizes) scaled(f float64) sizes {
	if f == 1 {
		return s
	}
	n := func(v, least int) int { return max(least, int(math.Round(float64(v)*f))) }
	return sizes{
		AppendSingle: n(s.AppendSingle, 2), AppendParallel: n(s.AppendParallel, 16), AppendBatch: n(s.AppendBatch, 2),
		DrainRows:     n(s.DrainRows, 100),
		ConsumeSingle: n(s.ConsumeSingle, 2), ConsumeBatched: n(s.ConsumeBatched, 200),
		LoadEvents: n(s.LoadEvents, 10), LoadReplays: n(s.LoadReplays, 1), LoadSnapshotLoads: n(s.LoadSnapshotLoads, 2),
		LatencyRate:     s.LatencyRate,
		LatencyDuration: max(200*time.Millisecond, time.Duration(float64(s.LatencyDuration)*f)),
		RebuildEvents:   n(s.RebuildEvents, 100),
		Prefill:         n(s.Prefill, 100),
	}
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("cqrsbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	only := ""
	pgDefault := defaultPostgresURL
	if v := getenv("CQRSKIT_TEST_POSTGRES_URL"); v != "" {
		pgDefault = v
	}
	fs.StringVar(&c.store, "store", "postgres", "event store: postgres or sqlite")
	fs.StringVar(&c.broker, "broker", "nats", "broker of the drain and latency scenarios: nats or kafka (in-process kfake)")
	fs.StringVar(&c.postgresURL, "postgres-url", pgDefault, "PostgreSQL server on which a scratch database is created (and dropped) per scenario (default from CQRSKIT_TEST_POSTGRES_URL)")
	fs.StringVar(&c.natsURL, "nats-url", "", "NATS server with JetStream; empty: an in-process server with file storage in a temporary directory")
	fs.StringVar(&c.latencyMode, "latency-read", "min_version", "how the latency scenario waits for the read model: min_version (GET ?min_version=N) or poll (GET until the version shows)")
	fs.IntVar(&c.rate, "latency-rate", 500, "commands per second of the latency scenario (DESIGN.md: 500)")
	fs.StringVar(&only, "only", "", "comma-separated scenarios to run (default all): "+strings.Join(scenarioNames(), ","))
	fs.BoolVar(&c.quick, "quick", false, "small sizes: the whole run takes under two minutes")
	fs.Float64Var(&c.scale, "scale", 1, "multiply every size by this factor (after -quick)")
	fs.StringVar(&c.jsonPath, "json", "", "write the results as JSON to this file")
	fs.StringVar(&c.svgPath, "svg", "", "write a bar chart of the ratios as SVG to this file")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the run (pprof format) to this file")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: cqrsbench [flags]

Runs the performance scenarios of DESIGN.md and prints, per case, the
framework's rate, the raw limit measured in the same run on the same data
(plain database/sql, nats.go or franz-go), their ratio and the target.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q; see -h", fs.Args())
	}
	c.args = args
	var errs []error
	if c.store != "postgres" && c.store != "sqlite" {
		errs = append(errs, fmt.Errorf("-store %q: want postgres or sqlite", c.store))
	}
	if c.broker != "nats" && c.broker != "kafka" {
		errs = append(errs, fmt.Errorf("-broker %q: want nats or kafka", c.broker))
	}
	if c.broker == "kafka" && c.natsURL != "" {
		errs = append(errs, errors.New("-nats-url and -broker=kafka: choose one broker"))
	}
	if c.latencyMode != "min_version" && c.latencyMode != "poll" {
		errs = append(errs, fmt.Errorf("-latency-read %q: want min_version or poll", c.latencyMode))
	}
	if c.rate < 1 || c.rate > 100_000 {
		errs = append(errs, fmt.Errorf("-latency-rate %d: want 1 to 100000 commands/s", c.rate))
	}
	if !(c.scale > 0) || c.scale > 100 {
		errs = append(errs, fmt.Errorf("-scale %v: want a factor in (0, 100]", c.scale))
	}
	for name := range strings.SplitSeq(only, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if !slices.Contains(scenarioNames(), name) {
			errs = append(errs, fmt.Errorf("-only: unknown scenario %q; want some of %s", name, strings.Join(scenarioNames(), ",")))
			continue
		}
		c.only = append(c.only, name)
	}
	if err := errors.Join(errs...); err != nil {
		return config{}, err
	}
	c.sizes = defaultSizes()
	if c.quick {
		c.sizes = quickSizes()
	}
	c.sizes = c.sizes.scaled(c.scale)
	c.sizes.LatencyRate = c.rate
	return c, nil
}

// selected reports whether scenario name is to run.
func (c config) selected(name string) bool {
	return len(c.only) == 0 || slices.Contains(c.only, name)
}
