//go:build unix

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// suite is one run: its processes, servers and findings.
type suite struct {
	o     options
	out   io.Writer
	outMu sync.Mutex
	begin time.Time
	runID string

	work     string
	bin      string
	nats     *natsServer
	pg       *pgServer
	scratch  *scratchDB
	dbURL    string  // the sample's database (PostgreSQL)
	dataDir  string  // the sample's data directory (-embedded)
	procs    []*proc // running
	allProcs []*proc // for the report
	poison   string
	loader   *loader
}

// result is what the last line reports, and whether every check passed.
type result struct {
	commands, faults, asked int
	lost, dup, violations   int
}

func (r *result) ok() bool {
	return r.lost == 0 && r.dup == 0 && r.violations == 0 && r.faults >= r.asked
}

func newSuite(o options, out io.Writer) *suite {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return &suite{o: o, out: out, begin: time.Now(), runID: "c" + hex.EncodeToString(b[:])}
}

// say prints a progress line with the time since the start.
func (s *suite) say(format string, args ...any) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.out, "[%6.1fs] %s\n", time.Since(s.begin).Seconds(), fmt.Sprintf(format, args...))
}

// verbose prints a line with -v only.
func (s *suite) verbose(format string, args ...any) {
	if s.o.verbose {
		s.say(format, args...)
	}
}

// run runs the whole suite; an error means it could not set up or was
// interrupted. What the run made is removed at the end, except with -keep
// or after a failed check; after a failed set-up the work directory (the
// process logs) is kept.
func (s *suite) run(ctx context.Context) (res *result, err error) {
	defer func() {
		failed := res != nil && !res.ok()
		s.cleanup(s.o.keep || failed || (err != nil && ctx.Err() == nil), s.o.keep || failed)
	}()

	if err := s.setup(ctx); err != nil {
		return nil, err
	}
	if err := s.startProcs(ctx); err != nil {
		return nil, err
	}

	// Load and faults, side by side, for -duration.
	s.say("load: %d clients, at most %d commands/s, for %s; faults: %d kills, %d NATS restarts, %d PostgreSQL restarts, 1 poison event (seed %d)",
		s.o.clients, s.o.rate, s.o.duration, s.o.kills, s.o.natsRestarts, s.o.pgRestarts, s.o.seed)
	lctx, cancel := context.WithTimeout(ctx, s.o.duration)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { s.loader.run(lctx, s.o.clients, s.o.rate) })
	var fs faultStats
	wg.Go(func() { fs = s.injectFaults(lctx) })
	wg.Wait()
	lg := s.loader.ledger
	s.say("load done: %d commands acknowledged, %d refused (4xx), %d ambiguous (no answer or 5xx), %d not sent (API down); statuses %s",
		len(lg.acks), lg.rejected.Load(), len(lg.ambiguous), lg.unsent.Load(), statusSummary(lg))
	s.say("faults: %d of %d injected (%s)", fs.total(), s.asked(), fs)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// Settle, then check with every process stopped.
	v, err := s.settleAndCheck(ctx)
	if err != nil {
		return nil, err
	}
	s.report(v, fs)
	return &result{commands: len(lg.acks), faults: fs.total(), asked: s.asked(),
		lost: v.lost(), dup: v.dup, violations: v.violations}, nil
}

// asked is the number of faults the options ask for.
func (s *suite) asked() int { return s.o.kills + s.o.natsRestarts + s.o.pgRestarts + 1 }

// setup makes the work directory, builds the sample and starts NATS and
// PostgreSQL.
func (s *suite) setup(ctx context.Context) error {
	var err error
	if s.o.workDir != "" {
		s.work = s.o.workDir
		err = os.MkdirAll(s.work, 0o755)
	} else {
		s.work, err = os.MkdirTemp("", "cqrschaos-")
	}
	if err != nil {
		return err
	}
	s.say("work directory %s (run %s)", s.work, s.runID)
	if s.bin = s.o.sampleBin; s.bin == "" {
		if err := s.build(ctx); err != nil {
			return err
		}
	}
	s.poison = "chaos poison " + s.runID
	if s.o.embedded {
		s.dataDir = filepath.Join(s.work, "data")
		s.say("embedded: SQLite and in-process NATS in %s", s.dataDir)
		return nil
	}
	natsBin, err := findNATSServer(s.o.natsServer)
	if err != nil {
		return err
	}
	if s.nats, err = newNATSServer(natsBin, s.work); err != nil {
		return err
	}
	if err := s.nats.start(ctx); err != nil {
		return err
	}
	s.say("NATS: %s on %s (JetStream in %s)", natsBin, s.nats.URL(), s.nats.dir)
	serverURL := s.o.postgresURL
	if serverURL == "" {
		if s.pg, err = startPrivatePostgres(s.o.pgBin); err != nil {
			return fmt.Errorf("private PostgreSQL: %w (or pass -postgres-url)", err)
		}
		serverURL = s.pg.URL()
		s.say("PostgreSQL: private server from %s on port %d (%s)", s.pg.bin, s.pg.port, s.pg.dir)
	}
	if s.scratch, err = createScratchDB(ctx, serverURL); err != nil {
		return err
	}
	s.dbURL = s.scratch.url
	s.say("PostgreSQL: scratch database %s on %s", s.scratch.name, redact(serverURL))
	return nil
}

// build builds the sample, with the poison hook (internal/poisoned), into
// the work directory.
func (s *suite) build(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return fmt.Errorf("find the cqrskit module (go env GOMOD: %q, %v): run from inside the repository or pass -sample-bin", gomod, err)
	}
	s.bin = filepath.Join(s.work, "sample")
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", s.bin, "./cmd/cqrschaos/internal/poisoned")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/cqrschaos/internal/poisoned: %v\n%s", err, out)
	}
	s.say("built the sample in %s", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// startProcs starts the sample's processes and waits until they are ready.
func (s *suite) startProcs(ctx context.Context) error {
	env := []string{"CQRSKIT_CHAOS_POISON=" + s.poison}
	add := func(role string, n int) error {
		for i := 1; i <= n; i++ {
			port, err := freePort()
			if err != nil {
				return err
			}
			name := role + "-" + strconv.Itoa(i)
			addr := "127.0.0.1:" + strconv.Itoa(port)
			args := []string{"--role=" + role, "--addr=" + addr, "--low-stock-threshold=" + strconv.FormatInt(s.o.threshold, 10)}
			if s.o.embedded {
				args = append(args, "--data-dir="+s.dataDir)
			} else {
				args = append(args, "--data-dir="+filepath.Join(s.work, name), "--postgres-url="+s.dbURL, "--nats-url="+s.nats.URL())
			}
			log, err := os.Create(filepath.Join(s.work, name+".log"))
			if err != nil {
				return err
			}
			var penv []string
			if role == "worker" || role == "all" {
				penv = env // the poison hook lives where the consumers run
			}
			s.procs = append(s.procs, newProc(name, role, addr, s.bin, args, penv, log, s.verbose))
		}
		return nil
	}
	var err error
	if s.o.embedded {
		err = add("all", 1)
	} else {
		err = errors.Join(add("api", s.o.apis), add("relay", s.o.relays), add("worker", s.o.workers))
	}
	if err != nil {
		return err
	}
	// The first process migrates the database; the others start after it.
	for i, p := range s.procs {
		go p.supervise(s.pause)
		if i == 0 {
			if err := p.ready(ctx, 2*time.Minute); err != nil {
				return fmt.Errorf("%s: %w; see %s", p.name, err, p.log.Name())
			}
		}
	}
	for _, p := range s.procs {
		if err := p.ready(ctx, time.Minute); err != nil {
			return fmt.Errorf("%s: %w; see %s", p.name, err, p.log.Name())
		}
	}
	s.allProcs = s.procs
	var names, apis []string
	for _, p := range s.procs {
		names = append(names, p.name)
		if p.role == "api" || p.role == "all" {
			apis = append(apis, "http://"+p.addr)
		}
	}
	s.say("started %s", strings.Join(names, ", "))
	s.loader = newLoader(apis, s.o.products, s.runID, s.poison, uint64(s.o.seed))
	return nil
}

// pause is how long a process stays down after it exits.
func (s *suite) pause() time.Duration {
	return 100*time.Millisecond + time.Duration(mrand.Int64N(int64(900*time.Millisecond)))
}

// settleAndCheck waits for the sample to catch up, stops it, and checks.
func (s *suite) settleAndCheck(ctx context.Context) (*verdict, error) {
	for _, p := range s.procs {
		if err := p.ready(ctx, time.Minute); err != nil {
			s.say("%s is not ready after the load: %v", p.name, err)
		}
	}
	db, err := s.open(ctx)
	if err != nil {
		return nil, err
	}
	x := expect{acks: s.loader.ledger.acks, ambiguous: s.loader.ledger.ambiguous,
		corrPrefix: s.runID + "-", poison: s.poison, threshold: s.o.threshold}
	s.say("settling: waiting up to %s for the outbox, the consumers and the projection to catch up", s.o.settle)
	start := time.Now()
	var (
		v       *verdict
		last    string
		changed = time.Now()
	)
	for {
		snap, err := db.take(ctx)
		if err == nil {
			v = check(snap, x)
			if v.clean() {
				s.say("settled in %s: %d events, all checks pass so far", time.Since(start).Round(100*time.Millisecond), v.events)
				break
			}
			if fp := snap.fingerprint(); fp != last {
				last, changed = fp, time.Now()
			}
		} else {
			s.verbose("settling: %v", err)
		}
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case time.Since(start) > s.o.settle:
			if v != nil {
				s.say("not settled after %s: %d lost, %d duplicated, %d other problems so far", s.o.settle, v.lost(), v.dup, v.violations)
			}
		case time.Since(changed) > stallWindow:
			s.say("nothing moved for %s: %d lost, %d duplicated, %d other problems", stallWindow, v.lost(), v.dup, v.violations)
		default:
			time.Sleep(time.Second)
			continue
		}
		break
	}
	db.close()

	s.stopProcs()
	if s.o.embedded {
		db, err = s.open(ctx)
	} else {
		db, err = openPostgres(s.dbURL)
	}
	if err != nil {
		return nil, err
	}
	defer db.close()
	snap, err := db.take(ctx)
	if err != nil {
		return nil, err
	}
	if s.o.embedded {
		snap.broker, err = readBrokerDir(ctx, filepath.Join(s.dataDir, "nats"))
	} else {
		snap.broker, err = readBrokerURL(ctx, s.nats.URL())
	}
	if err != nil {
		return nil, fmt.Errorf("read the broker's stream: %w", err)
	}
	return check(snap, x), nil
}

// stallWindow ends the settling early when nothing changed for this long:
// longer than the broker's redelivery timeout (AckWait, 30s by default),
// after which a message a killed worker held comes back.
const stallWindow = 50 * time.Second

func (s *suite) open(ctx context.Context) (*database, error) {
	if s.o.embedded {
		return openSQLite(ctx, filepath.Join(s.dataDir, "cqrskit.db"))
	}
	return openPostgres(s.dbURL)
}

// stopProcs stops the sample's processes gracefully: the API first, the
// relays last.
func (s *suite) stopProcs() {
	order := map[string]int{"api": 0, "all": 0, "worker": 1, "relay": 2}
	procs := slices.Clone(s.procs)
	slices.SortStableFunc(procs, func(a, b *proc) int { return order[a.role] - order[b.role] })
	for _, p := range procs {
		p.stop(30 * time.Second)
		p.log.Close()
	}
	s.procs = nil
}

// cleanup stops everything still running and removes what the run made,
// except the work directory with keepWork and the database with keepDB.
func (s *suite) cleanup(keepWork, keepDB bool) {
	s.stopProcs()
	if s.nats != nil {
		s.nats.stop()
	}
	switch {
	case s.pg != nil:
		s.pg.close(keepDB)
		if keepDB {
			s.say("kept the private PostgreSQL server's directory %s; to look inside: %s", s.pg.dir, s.pg.startHint())
		}
	case s.scratch != nil && keepDB:
		s.say("kept the scratch database %s", s.scratch.name)
		s.scratch.admin.Close()
	case s.scratch != nil:
		if err := s.scratch.drop(context.Background()); err != nil {
			s.say("drop the scratch database %s: %v", s.scratch.name, err)
		}
	}
	if s.work == "" || s.o.workDir != "" {
		return
	}
	if keepWork {
		s.say("kept the work directory %s (binary, process logs, NATS store)", s.work)
		return
	}
	_ = os.RemoveAll(s.work)
}
