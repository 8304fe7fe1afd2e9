package main

import (
	"strings"
	"testing"
)

// TestMissedLimits: every figure of issue 15 point 5 has a line saying
// what limits it, and the results print it for a missed figure only.
func TestMissedLimits(t *testing.T) {
	for _, name := range append([]string{figRESTCPU, figCoRESTCPU, figCoRESTRatio, figLatencyP99Add}, names(heldTransportSpecs())...) {
		if l, ok := limitOf(name); !ok || strings.HasPrefix(l, " ") {
			t.Errorf("limit for %q = %q, want a line", name, l)
		}
	}
	missed := measured(figCoRESTCPU, []float64{60}, "")
	met := measured(figRESTCPU, []float64{40}, "")
	unknown := measured(figGRPCRatio, []float64{0.1}, "")
	got := missedLimits([]figure{missed, met, unknown})
	if len(got) != 1 || !strings.HasPrefix(got[0], figCoRESTCPU+": 60.0 µs against ≤ 35 µs; ") {
		t.Errorf("missedLimits = %q, want one line for %q", got, figCoRESTCPU)
	}
}
