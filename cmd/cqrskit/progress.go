package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows how far a long wait has come: a bar with done/total,
// rate and ETA on a terminal, a plain line now and then otherwise (logs,
// CI).
type progress interface {
	// update reports done of total events.
	update(done, total int64)
	// finish ends the display.
	finish()
}

// newProgress returns a bar when w is a terminal, else plain lines.
func newProgress(w io.Writer, what string, total int64) progress {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
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
	return &lineProgress{w: w, what: what, start: time.Now(), every: plainEvery}
}

type barProgress struct{ bar *progressbar.ProgressBar }

func (p *barProgress) update(done, total int64) {
	if total != p.bar.GetMax64() && total > 0 {
		p.bar.ChangeMax64(total)
	}
	_ = p.bar.Set64(done)
}

func (p *barProgress) finish() { _ = p.bar.Finish() }

// plainEvery is how often plain progress prints a line.
const plainEvery = 2 * time.Second

// lineProgress prints "what: done/total events (pct), rate, ETA" lines.
type lineProgress struct {
	w           io.Writer
	what        string
	start       time.Time
	every       time.Duration
	first       int64 // done at the first update, to measure the rate
	started     bool
	last        time.Time
	done, total int64
}

func (p *lineProgress) update(done, total int64) {
	now := time.Now()
	if !p.started {
		p.started, p.first, p.start = true, done, now
	}
	p.done, p.total = done, total
	if now.Sub(p.last) >= p.every {
		p.print(now)
	}
}

func (p *lineProgress) finish() {
	if p.started {
		p.print(time.Now())
	}
}

func (p *lineProgress) print(now time.Time) {
	p.last = now
	line := fmt.Sprintf("%s: %d/%d events", p.what, p.done, p.total)
	if p.total > 0 {
		line += fmt.Sprintf(" (%.1f%%)", 100*float64(p.done)/float64(p.total))
	}
	if secs := now.Sub(p.start).Seconds(); secs >= 0.5 && p.done > p.first {
		rate := float64(p.done-p.first) / secs
		line += fmt.Sprintf(", %.0f events/s", rate)
		if left := p.total - p.done; left > 0 {
			line += ", ETA " + formatAge(time.Duration(float64(left)/rate*float64(time.Second)))
		}
	}
	fmt.Fprintln(p.w, line)
}
