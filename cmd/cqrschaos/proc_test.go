//go:build unix

package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestProcKillRestart: each kill hits a live process, started again after
// the one before; a process dying from a kill is not killed (and counted)
// twice.
func TestProcKillRestart(t *testing.T) {
	sleep := "/bin/sleep"
	if _, err := os.Stat(sleep); err != nil {
		t.Skip("no /bin/sleep")
	}
	log, err := os.Create(filepath.Join(t.TempDir(), "sleep.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	p := newProc("sleep-1", "worker", "", sleep, []string{"60"}, nil, log, t.Logf)
	go p.supervise(func() time.Duration { return 20 * time.Millisecond })
	for i := range 4 {
		if !p.kill(5 * time.Second) {
			t.Fatalf("kill %d: no live process", i+1)
		}
	}
	p.stop(5 * time.Second)
	if p.kills != 4 || p.starts < 4 || p.unexpected != 0 {
		t.Fatalf("%d kills, %d starts, %d exits by itself; want 4, at least 4, 0", p.kills, p.starts, p.unexpected)
	}
	if p.kill(10 * time.Millisecond) {
		t.Fatal("killed a stopped process")
	}
}
