package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// chart draws the figures as horizontal bars of their score, how far each
// is toward its target (measured ÷ target for "at least" targets, target ÷
// measured for "at most" ones), with a line at 1 where the target is met.
// One scale for every figure lets ratios, microseconds and kilobytes share
// a chart. Figures with no score (not measured, no target, or a target of
// zero) are listed without a bar.
func chart(figs []figure) string {
	const (
		width, labelW, barW = 1150, 430, 380
		rowH, top           = 26, 50
		maxScore            = 2.0 // bars are cut at twice the target
	)
	height := top + rowH*len(figs) + 50
	x := func(score float64) float64 { return labelW + barW*math.Min(score, maxScore)/maxScore }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="10" y="22" font-size="15" font-weight="bold">Figures against their targets (1 = target; bars end at 2)</text>`+"\n")
	// The axes first, so that the labels are written over them.
	bottom := top + rowH*len(figs)
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black" stroke-dasharray="4 3"/>`+"\n", x(1), top-6, x(1), bottom)
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">target met</text>`+"\n", x(1), bottom+16)
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">bar: measured ÷ target (or target ÷ measured where less is better); green: met</text>`+"\n", labelW, bottom+32)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", labelW, top-6, labelW, bottom)
	for i, f := range figs {
		y := top + i*rowH
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-8, y+15, html.EscapeString(shorten(f.name, 70)))
		s := f.score()
		if math.IsNaN(s) {
			label := "not measured"
			if f.measured {
				label = f.formatValue(f.value) + " (target " + f.formatTarget() + ")"
				if f.target.none {
					label = f.formatValue(f.value) + " (no target)"
				}
				if f.met() {
					label += " ✓"
				}
			}
			fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">%s</text>`+"\n", labelW+4, y+15, html.EscapeString(label))
			continue
		}
		color := "#c0392b"
		if f.met() {
			color = "#27ae60"
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", labelW, y+3, x(s)-labelW, rowH-8, color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s (target %s)</text>`+"\n", x(s)+4, y+15,
			html.EscapeString(f.formatValue(f.value)), html.EscapeString(f.formatTarget()))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// shorten cuts s to at most n runes, marking the cut.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
