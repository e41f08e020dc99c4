package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"
)

// scenario is one path of DESIGN.md's performance table. Run measures the
// framework and the raw limit on the same data in the same run and returns
// one row per case.
type scenario interface {
	// Name is the scenario's name for -only and in the report.
	Name() string
	// Run runs the scenario on fresh storage from e.
	Run(ctx context.Context, e *env) ([]row, error)
}

// scenarios lists every scenario in the order they run.
func scenarios() []scenario {
	return []scenario{appendScenario{}, drainScenario{}, consumerScenario{}, loadScenario{}, latencyScenario{}, rebuildScenario{}}
}

func scenarioNames() []string {
	var names []string
	for _, s := range scenarios() {
		names = append(names, s.Name())
	}
	return names
}

// runBench runs the selected scenarios and writes the table, the JSON and
// the SVG. A failing scenario is reported and the others still run; the
// error then names every failure.
func runBench(ctx context.Context, cfg config, stdout, stderr io.Writer) (err error) {
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			err = errors.Join(err, f.Close())
		}()
	}
	e, err := newEnv(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, e.close()) }()

	rep := newReport(cfg, e)
	fmt.Fprintln(stdout, rep.header())
	t := newTable(stdout)
	var failed []string // scenarios
	var errs []error    // of writing the outputs
	for _, s := range scenarios() {
		if !cfg.selected(s.Name()) {
			continue
		}
		if ctx.Err() != nil {
			failed = append(failed, s.Name())
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s: not run: %v", s.Name(), ctx.Err()))
			continue
		}
		fmt.Fprintf(stderr, "cqrsbench: %s ...\n", s.Name())
		start := time.Now()
		rows, err := s.Run(ctx, e)
		for _, r := range rows {
			t.print(r)
		}
		rep.Rows = append(rep.Rows, rows...)
		if err != nil {
			failed = append(failed, s.Name())
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", s.Name(), err))
			fmt.Fprintf(stderr, "cqrsbench: %s failed: %v\n", s.Name(), err)
			continue
		}
		fmt.Fprintf(stderr, "cqrsbench: %s done in %s\n", s.Name(), time.Since(start).Round(100*time.Millisecond))
	}
	rep.Elapsed = time.Since(rep.Started).Round(time.Second).String()
	t.footer()
	if cfg.jsonPath != "" {
		errs = append(errs, rep.writeJSON(cfg.jsonPath))
	}
	if cfg.svgPath != "" {
		errs = append(errs, writeSVG(cfg.svgPath, rep))
	}
	if len(failed) > 0 {
		errs = append(errs, fmt.Errorf("%d scenario(s) failed: %s (errors above)", len(failed), strings.Join(failed, ", ")))
	}
	return errors.Join(errs...)
}
