package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strings"
	"time"
)

// row is one measured case: the framework beside the raw limit.
type row struct {
	Scenario string `json:"scenario"`
	Case     string `json:"case"`
	// Unit of Framework and Raw: a rate ("cmd/s", "events/s", "loads/s")
	// or, with LowerIsBetter, a latency ("ms").
	Unit          string  `json:"unit"`
	LowerIsBetter bool    `json:"lower_is_better,omitempty"`
	Framework     float64 `json:"framework"`
	Raw           float64 `json:"raw"`
	// RawWhat says what the raw limit is.
	RawWhat string `json:"raw_what"`
	// Ratio is the framework's performance relative to the raw limit:
	// Framework/Raw for rates, Raw/Framework for latencies, so 1 is raw
	// speed and higher is better either way.
	Ratio float64 `json:"ratio"`
	// Target is DESIGN.md's target for this case, if it has one, and Met
	// whether this run reached it.
	Target string `json:"target,omitempty"`
	Met    *bool  `json:"met,omitempty"`
	// TargetRatio is the target expressed as a Ratio: the run meets it
	// when Ratio >= TargetRatio.
	TargetRatio float64 `json:"target_ratio,omitempty"`
	// Details holds further figures (the other raw halves, percentiles).
	Details map[string]float64 `json:"details,omitempty"`
}

// newRow returns the row of a rate comparison.
func newRow(scenario, cas, unit string, framework, raw float64, rawWhat string) row {
	r := row{Scenario: scenario, Case: cas, Unit: unit, Framework: framework, Raw: raw, RawWhat: rawWhat}
	if raw > 0 {
		r.Ratio = framework / raw
	}
	return r
}

// target is a DESIGN.md target: its text, the check of a row, and the
// target as a ratio to the row's raw limit (for the chart).
type target struct {
	text  string
	met   func(row) bool
	ratio func(row) float64
}

// ratioAtLeast: the framework reaches x times the raw limit.
func ratioAtLeast(x float64, text string) target {
	return target{text, func(r row) bool { return r.Ratio >= x }, func(row) float64 { return x }}
}

// atLeast: the framework's rate reaches x.
func atLeast(x float64, text string) target {
	return target{text, func(r row) bool { return r.Framework >= x }, func(r row) float64 { return x / r.Raw }}
}

// atMost: the framework's latency stays at or below x.
func atMost(x float64, text string) target {
	return target{text, func(r row) bool { return r.Framework <= x }, func(r row) float64 { return r.Raw / x }}
}

func (r row) withTarget(t target) row {
	met := t.met(r)
	r.Target, r.Met = t.text, &met
	if r.Raw > 0 {
		r.TargetRatio = t.ratio(r)
	}
	return r
}

func (r row) with(key string, v float64) row {
	if r.Details == nil {
		r.Details = map[string]float64{}
	}
	r.Details[key] = v
	return r
}

// report is the JSON document of a run.
type report struct {
	Started time.Time `json:"started"`
	Elapsed string    `json:"elapsed"`
	Command string    `json:"command"`
	Machine machine   `json:"machine"`
	Store   string    `json:"store"`
	Broker  string    `json:"broker"`
	Quick   bool      `json:"quick"`
	Scale   float64   `json:"scale"`
	Sizes   sizes     `json:"sizes"`
	Rows    []row     `json:"rows"`
	Errors  []string  `json:"errors,omitempty"`
}

type machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	GoVersion string `json:"go_version"`
	Postgres  string `json:"postgres,omitempty"`
	Broker    string `json:"broker"`
}

func newReport(cfg config, e *env) *report {
	cmd := "go run ./cmd/cqrsbench"
	for _, a := range cfg.args {
		if strings.HasPrefix(a, "-postgres-url") || strings.HasPrefix(a, "--postgres-url") {
			a = strings.SplitN(a, "=", 2)[0] + "=..."
		}
		cmd += " " + a
	}
	return &report{
		Started: time.Now().UTC().Truncate(time.Second),
		Command: cmd,
		Machine: machine{CPUs: runtime.NumCPU(), CPUModel: cpuModel(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
			GoVersion: runtime.Version(), Postgres: e.pgVersion, Broker: e.brokerWhat},
		Store: cfg.store, Broker: cfg.broker, Quick: cfg.quick, Scale: cfg.scale, Sizes: cfg.sizes,
	}
}

// header is the first line of the output: what runs where.
func (r *report) header() string {
	s := fmt.Sprintf("cqrsbench: store %s", r.Store)
	if r.Machine.Postgres != "" {
		s += " (" + r.Machine.Postgres + ")"
	}
	s += fmt.Sprintf(", broker %s; %d CPUs", r.Machine.Broker, r.Machine.CPUs)
	if r.Machine.CPUModel != "" {
		s += " (" + r.Machine.CPUModel + ")"
	}
	s += ", " + r.Machine.GoVersion
	if r.Quick {
		s += "; -quick"
	}
	return s
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// cpuModel is the CPU's model name on Linux, "" elsewhere.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// table prints rows as they come, in fixed-width columns.
type table struct {
	w       io.Writer
	printed bool
	missed  int
}

const tableFormat = "%-9s %-46s %18s %22s %6s  %-26s %s\n"

func newTable(w io.Writer) *table { return &table{w: w} }

func (t *table) print(r row) {
	if !t.printed {
		fmt.Fprintf(t.w, tableFormat, "SCENARIO", "CASE", "FRAMEWORK", "RAW LIMIT (SAME RUN)", "RATIO", "TARGET", "")
		t.printed = true
	}
	verdict := ""
	if r.Met != nil {
		verdict = "met"
		if !*r.Met {
			verdict = "MISSED"
			t.missed++
		}
	}
	fmt.Fprintf(t.w, tableFormat, r.Scenario, r.Case, r.framework(), r.raw(), formatRatio(r.Ratio), r.Target, verdict)
	if r.LowerIsBetter {
		d := r.Details
		fmt.Fprintf(t.w, "%10svisible p50/p99/max %s/%s/%s ms; ack %s/%s/%s ms; ack->visible %s/%s/%s ms; sent %s/s, %s failed, %s not visible\n", "",
			formatFloat(d["visible_p50_ms"]), formatFloat(d["visible_p99_ms"]), formatFloat(d["visible_max_ms"]),
			formatFloat(d["ack_p50_ms"]), formatFloat(d["ack_p99_ms"]), formatFloat(d["ack_max_ms"]),
			formatFloat(d["ack_to_visible_p50_ms"]), formatFloat(d["ack_to_visible_p99_ms"]), formatFloat(d["ack_to_visible_max_ms"]),
			formatRate(d["sent_per_s"]), formatRate(d["failed"]), formatRate(d["not_visible"]))
	}
}

func (t *table) footer() {
	if t.missed > 0 {
		fmt.Fprintf(t.w, "%d target(s) missed; see docs/BENCHMARKS.md for what bounds them.\n", t.missed)
	}
}

func (r row) framework() string {
	if r.LowerIsBetter {
		return fmt.Sprintf("p99 %s %s", formatFloat(r.Framework), r.Unit)
	}
	return formatRate(r.Framework) + " " + r.Unit
}

func (r row) raw() string {
	if r.LowerIsBetter {
		return fmt.Sprintf("p99 %s %s", formatFloat(r.Raw), r.Unit)
	}
	return formatRate(r.Raw) + " " + r.Unit
}

// formatRate writes a rate with thousands separators, or with decimals
// when it is small.
func formatRate(v float64) string {
	if v < 100 {
		return formatFloat(v)
	}
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func formatFloat(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// formatRatio shows a ratio near 1 as a percentage, a large one as a
// factor.
func formatRatio(r float64) string {
	switch {
	case r == 0 || math.IsInf(r, 0) || math.IsNaN(r):
		return "-"
	case r >= 100:
		return fmt.Sprintf("%.0fx", r)
	case r >= 10:
		return fmt.Sprintf("%.1fx", r)
	default:
		return fmt.Sprintf("%.0f %%", 100*r)
	}
}
