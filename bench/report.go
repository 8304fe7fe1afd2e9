package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// results is everything a run found, for the table and the chart.
type results struct {
	figures []figure
	// details are the measurements behind the figures, one sentence each.
	details []string
	// about describes the run: command, machine, versions, load.
	about []string
}

// sortFigures puts the figures in the order of allFigures, the issue's.
func (r *results) sortFigures() {
	slices.SortStableFunc(r.figures, func(a, b figure) int {
		return slices.Index(allFigures, a.name) - slices.Index(allFigures, b.name)
	})
}

// write writes results.md and results.svg into dir.
func (r *results) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(r.markdown()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.svg"), []byte(chart(r.figures)), 0o644)
}

func (r *results) markdown() string {
	var b strings.Builder
	b.WriteString("# Benchmark results\n\n")
	for _, a := range r.about {
		fmt.Fprintf(&b, "- %s\n", a)
	}
	b.WriteString(`
Every figure is the median over rounds. In each round every configuration
runs once, in the same order (A, B, A, B …), and a ratio or a difference is
taken between the configurations of one round, so that the load of this
shared machine, which drifts, weighs on both sides alike. CPU time is read
from /proc/<pid>/stat (utime + stime, in clock ticks of 1/100 s, the value
of sysconf(_SC_CLK_TCK) on Linux) before and after each run; HAProxy's is
the sum over its workers (the master's children).

| figure | measured | target | met? |
| --- | --- | --- | --- |
`)
	for _, f := range r.figures {
		value, met := "not measured", "–"
		if f.measured {
			value = f.formatValue(f.value)
			switch {
			case f.target.none:
				// Reported only: nothing to meet.
			case f.met():
				met = "yes"
			default:
				met = "no"
			}
		}
		if f.note != "" {
			value += " (" + f.note + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", f.name, value, f.formatTarget(), met)
	}
	if missed := missedLimits(r.figures); len(missed) > 0 {
		b.WriteString("\n## What limits the targets missed\n\n")
		for _, m := range missed {
			fmt.Fprintf(&b, "- %s\n", m)
		}
	}
	b.WriteString("\n![the figures against their targets](results.svg)\n\n## Each round\n\n| figure | rounds |\n| --- | --- |\n")
	for _, f := range r.figures {
		if !f.measured {
			continue
		}
		vals := make([]string, len(f.rounds))
		for i, v := range f.rounds {
			vals[i] = f.formatValue(v)
		}
		fmt.Fprintf(&b, "| %s | %s |\n", f.name, strings.Join(vals, ", "))
	}
	b.WriteString("\n## Behind the figures\n\n")
	for _, d := range r.details {
		fmt.Fprintf(&b, "- %s\n", d)
	}
	return b.String()
}
