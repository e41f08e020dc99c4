//go:build unix

package main

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// faultStats counts the faults injected, by kind.
type faultStats struct {
	kills        map[string]int // role -> SIGKILLs delivered
	natsRestarts int
	pgRestarts   int
	poison       int
	missed       []string // faults that could not be injected, and why
}

func (f faultStats) total() int {
	n := f.natsRestarts + f.pgRestarts + f.poison
	for _, k := range f.kills {
		n += k
	}
	return n
}

func (f faultStats) String() string {
	var parts []string
	for _, role := range []string{"api", "relay", "worker", "all"} {
		if n := f.kills[role]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d SIGKILL %s", n, role))
		}
	}
	if f.natsRestarts > 0 {
		parts = append(parts, fmt.Sprintf("%d NATS restarts", f.natsRestarts))
	}
	if f.pgRestarts > 0 {
		parts = append(parts, fmt.Sprintf("%d PostgreSQL restarts", f.pgRestarts))
	}
	parts = append(parts, fmt.Sprintf("%d poison", f.poison))
	s := strings.Join(parts, ", ")
	if len(f.missed) > 0 {
		s += "; missed: " + strings.Join(f.missed, "; ")
	}
	return s
}

// fault is one planned fault.
type fault struct {
	at     time.Duration // after the start of the load
	kind   string        // kill, nats, pg, poison
	target *proc
}

// plan draws the fault schedule: kills spread evenly over the roles (in a
// random order) at random moments between 5 % and 85 % of the run, the
// restarts between 10 % and 70 %, the poison between 10 % and 40 %, so
// each has time to show its effect before the load ends.
func (s *suite) plan(r *mrand.Rand) []fault {
	byRole := map[string][]*proc{}
	var roles []string
	for _, p := range s.procs {
		if byRole[p.role] == nil {
			roles = append(roles, p.role)
		}
		byRole[p.role] = append(byRole[p.role], p)
	}
	at := func(from, to float64) time.Duration {
		return time.Duration((from + r.Float64()*(to-from)) * float64(s.o.duration))
	}
	var fs []fault
	targets := make([]string, s.o.kills)
	for i := range targets {
		targets[i] = roles[i%len(roles)]
	}
	r.Shuffle(len(targets), func(i, j int) { targets[i], targets[j] = targets[j], targets[i] })
	for _, role := range targets {
		ps := byRole[role]
		fs = append(fs, fault{at: at(0.05, 0.85), kind: "kill", target: ps[r.IntN(len(ps))]})
	}
	for range s.o.natsRestarts {
		fs = append(fs, fault{at: at(0.1, 0.7), kind: "nats"})
	}
	for range s.o.pgRestarts {
		fs = append(fs, fault{at: at(0.1, 0.7), kind: "pg"})
	}
	fs = append(fs, fault{at: at(0.1, 0.4), kind: "poison"})
	slices.SortFunc(fs, func(a, b fault) int { return int(a.at - b.at) })
	return fs
}

// injectFaults injects the planned faults until ctx ends. Kills happen on
// time; NATS and PostgreSQL restarts run beside them, so a process may be
// killed while the broker or the database is down.
func (s *suite) injectFaults(ctx context.Context) faultStats {
	r := mrand.New(mrand.NewPCG(uint64(s.o.seed), 0xfa17))
	plan := s.plan(r)
	start := time.Now()
	var (
		mu    sync.Mutex
		stats = faultStats{kills: map[string]int{}}
		wg    sync.WaitGroup
		n     atomic.Int64
	)
	note := func(format string, args ...any) {
		s.verbose("fault %d/%d: %s", n.Add(1), len(plan), fmt.Sprintf(format, args...))
	}
	miss := func(format string, args ...any) {
		mu.Lock()
		stats.missed = append(stats.missed, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	for i, f := range plan {
		select {
		case <-ctx.Done():
			for _, f := range plan[i:] {
				miss("%s at %s: the load ended first", f.kind, f.at.Round(100*time.Millisecond))
			}
			wg.Wait()
			return stats
		case <-time.After(time.Until(start.Add(f.at))):
		}
		switch f.kind {
		case "kill":
			if f.target.kill(5 * time.Second) {
				mu.Lock()
				stats.kills[f.target.role]++
				mu.Unlock()
				note("SIGKILL %s", f.target.name)
			} else {
				miss("SIGKILL %s: not running within 5s", f.target.name)
			}
		case "nats":
			wg.Go(func() {
				note("stop NATS for %s", s.o.outage)
				s.nats.stop()
				time.Sleep(s.o.outage)
				if err := s.nats.start(context.WithoutCancel(ctx)); err != nil {
					s.say("restart NATS: %v", err)
					miss("NATS restart: %v", err)
					return
				}
				mu.Lock()
				stats.natsRestarts++
				mu.Unlock()
				s.verbose("NATS is back")
			})
		case "pg":
			wg.Go(func() {
				note("restart PostgreSQL")
				if err := s.restartPostgres(ctx); err != nil {
					s.say("restart PostgreSQL: %v", err)
					miss("PostgreSQL restart: %v", err)
					return
				}
				mu.Lock()
				stats.pgRestarts++
				mu.Unlock()
				s.verbose("PostgreSQL is back")
			})
		case "poison":
			seed := r.Uint64()
			wg.Go(func() {
				if s.injectPoison(ctx, seed) {
					mu.Lock()
					stats.poison++
					mu.Unlock()
					note("poison product %q created", s.poison)
				} else {
					miss("poison: no create acknowledged")
				}
			})
		}
	}
	wg.Wait()
	return stats
}

// restartPostgres restarts the private server, or runs -pg-restart-cmd.
func (s *suite) restartPostgres(ctx context.Context) error {
	if s.pg != nil {
		return s.pg.restart(s.o.outage)
	}
	cmd := exec.CommandContext(context.WithoutCancel(ctx), "/bin/sh", "-c", s.o.pgRestartCmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", s.o.pgRestartCmd, err, lastLines(out, 3))
	}
	return nil
}

// injectPoison creates the poison product, trying again while the API is
// down or the answer is lost, until one create is acknowledged.
func (s *suite) injectPoison(ctx context.Context, seed uint64) bool {
	r := mrand.New(mrand.NewPCG(seed, 1))
	for ctx.Err() == nil {
		if out, _ := s.loader.createNamed(r, s.poison); out == acked {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}
