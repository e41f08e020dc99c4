//go:build unix

package main

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
)

// maxProblems caps the problem lines printed.
const maxProblems = 40

// report prints the figures and the problems found.
func (s *suite) report(v *verdict, fs faultStats) {
	s.say("store: %d events in %d products (%d poison); %d low-stock alerts due", v.events, v.products, v.poison, v.alerts)
	s.say("ambiguous commands: %d stored, %d not (either is correct); %d acknowledged no-ops (a rename or price change to the current value stores nothing)",
		v.ambiguousStored, v.ambiguousNot, v.noops)
	s.say("broker: %d messages, %d of them republished copies beyond the duplicate window", v.brokerMsgs, v.brokerRepublished)
	var procs []string
	for _, p := range s.allProcs {
		procs = append(procs, fmt.Sprintf("%s %d starts/%d kills/%d exits by itself", p.name, p.starts, p.kills, p.unexpected))
	}
	s.say("processes: %s", strings.Join(procs, "; "))
	if len(fs.missed) > 0 {
		s.say("FAIL: %d of %d faults injected; missed: %s", fs.total(), s.asked(), strings.Join(fs.missed, "; "))
	}
	for i, p := range v.problems {
		if i == maxProblems {
			s.say("... and %d more problems", len(v.problems)-maxProblems)
			break
		}
		s.say("FAIL: %s", p)
	}
	if v.clean() && len(fs.missed) == 0 {
		s.say("every acknowledged command is stored once; every event reached the read models, the alerts and both consumers exactly once, in order; the poison, and only it, is in the dead letters")
	}
}

// statusSummary lists the HTTP statuses the clients saw.
func statusSummary(l *ledger) string {
	var codes []int
	l.statuses.Range(func(k, _ any) bool {
		codes = append(codes, k.(int))
		return true
	})
	slices.Sort(codes)
	var parts []string
	for _, c := range codes {
		v, _ := l.statuses.Load(c)
		parts = append(parts, fmt.Sprintf("%d×%d", v.(*atomic.Int64).Load(), c))
	}
	return strings.Join(parts, " ")
}
