package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress shows how far a rebuild has come: a bar with count, rate and
// ETA on a terminal, a plain line every two seconds otherwise (logs, CI,
// tests).
type progress interface {
	update(done, total int64)
	finish()
}

func newProgress(w io.Writer, what string, total int64) progress {
	if isTerminal(w) {
		return &barProgress{bar: progressbar.NewOptions64(max(total, 1),
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(what),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("events"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionFullWidth(),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
		)}
	}
	return &lineProgress{w: w, what: what, start: time.Now()}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

type barProgress struct{ bar *progressbar.ProgressBar }

func (p *barProgress) update(done, total int64) {
	if total > 0 && total != p.bar.GetMax64() {
		p.bar.ChangeMax64(total)
	}
	_ = p.bar.Set64(done)
}

func (p *barProgress) finish() { _ = p.bar.Finish() }

// lineProgress prints "what: done/total events (pct), rate" lines.
type lineProgress struct {
	w           io.Writer
	what        string
	start, last time.Time
	done, total int64
}

func (p *lineProgress) update(done, total int64) {
	p.done, p.total = done, total
	if now := time.Now(); now.Sub(p.last) >= 2*time.Second {
		p.last = now
		p.print(now)
	}
}

func (p *lineProgress) finish() { p.print(time.Now()) }

func (p *lineProgress) print(now time.Time) {
	line := fmt.Sprintf("cqrsbench:   %s: %d/%d events", p.what, p.done, p.total)
	if p.total > 0 {
		line += fmt.Sprintf(" (%.0f%%)", 100*float64(p.done)/float64(p.total))
	}
	if secs := now.Sub(p.start).Seconds(); secs > 0 && p.done > 0 {
		line += fmt.Sprintf(", %.0f events/s", float64(p.done)/secs)
	}
	fmt.Fprintln(p.w, line)
}
