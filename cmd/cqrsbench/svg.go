package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"os"
)

// writeSVG draws the rows' ratios as horizontal bars on a log scale,
// growing from 1 (raw speed): right of it the framework beats the raw
// limit, left of it it falls short. A red tick marks each target in the
// same terms; a bar reaching its tick meets it.
func writeSVG(path string, rep *report) error {
	var rows []row
	for _, r := range rep.Rows {
		if r.Ratio > 0 && !math.IsInf(r.Ratio, 0) {
			rows = append(rows, r)
		}
	}
	const (
		width, left, right = 980.0, 340.0, 880.0
		top, rowH, barH    = 70.0, 30.0, 16.0
	)
	lo, hi := 0.01, 10.0
	for _, r := range rows {
		for _, v := range []float64{r.Ratio, r.TargetRatio} {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	lo, hi = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	x := func(v float64) float64 {
		return left + (right-left)*(math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))
	}
	height := top + rowH*float64(len(rows)) + 70

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	title := fmt.Sprintf("cqrskit: framework vs raw limit in the same run (%s, %s; %s)", rep.Store, rep.Machine.Broker, rep.Started.Format("2006-01-02"))
	fmt.Fprintf(&b, `<text x="20" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", esc(title))
	fmt.Fprintf(&b, `<text x="20" y="44" fill="#555">ratio = framework / raw for rates, raw / framework for latency (log scale; 1 = raw speed; red tick = DESIGN.md target)</text>`+"\n")
	// Grid and axis labels at the powers of ten.
	bottom := top + rowH*float64(len(rows))
	for v := lo; v <= hi*1.0001; v *= 10 {
		stroke, w := "#ddd", 1
		if math.Abs(v-1) < 1e-9 {
			stroke, w = "#333", 2
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="%s" stroke-width="%d"/>`+"\n", x(v), top-8, x(v), bottom, stroke, w)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" fill="#555">%s</text>`+"\n", x(v), bottom+16, axisLabel(v))
	}
	for i, r := range rows {
		y := top + rowH*float64(i)
		label := r.Scenario + " · " + r.Case
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-10, y+barH/2+4, esc(label))
		color := "#4a78b5" // no target
		if r.Met != nil {
			color = "#3a9a4a"
			if !*r.Met {
				color = "#c8463c"
			}
		}
		x0, x1 := x(1), x(r.Ratio)
		if x1 < x0 {
			x0, x1 = x1, x0
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.0f" fill="%s"/>`+"\n", x0, y, math.Max(x1-x0, 1), barH, color)
		// The value right of the bar, or right of the 1x line for a bar
		// growing left.
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", math.Max(x(r.Ratio), x(1))+6, y+barH/2+4, esc(formatRatio(r.Ratio)))
		if r.TargetRatio > 0 {
			tx := x(r.TargetRatio)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#d00" stroke-width="3"><title>%s</title></line>`+"\n",
				tx, y-3, tx, y+barH+3, esc("target "+r.Target))
		}
	}
	ly := bottom + 40
	for i, l := range []struct{ color, text string }{{"#3a9a4a", "target met"}, {"#c8463c", "target missed"}, {"#4a78b5", "no target"}} {
		lx := 20 + 150*float64(i)
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="12" height="12" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`+"\n", lx, ly, l.color, lx+18, ly+10, l.text)
	}
	fmt.Fprintf(&b, `<text x="470" y="%.0f" fill="#555">%s</text>`+"\n", ly+10, esc(rep.Command))
	b.WriteString("</svg>\n")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write SVG: %w", err)
	}
	return nil
}

func axisLabel(v float64) string {
	if v < 1 {
		return fmt.Sprintf("%gx", v)
	}
	return fmt.Sprintf("%.0fx", v)
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
