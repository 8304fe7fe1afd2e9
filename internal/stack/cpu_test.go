package stack

import (
	"runtime"
	"testing"

	"github.com/codename-gateway/codename-gateway/internal/tuning"
)

func TestGoProcesses(t *testing.T) {
	for _, tt := range []struct {
		mode           string
		replicas, want int
	}{
		{Separate, 1, 2},
		{Separate, 3, 6},
		{Colocated, 1, 1}, // the gateway lives in the server
		{Colocated, 3, 3},
	} {
		if got := goProcesses(tt.mode, tt.replicas); got != tt.want {
			t.Errorf("goProcesses(%s, %d) = %d, want %d", tt.mode, tt.replicas, got, tt.want)
		}
	}
	// HAProxy is the one process more that shares the cores.
	if got, want := cpuShare(Colocated, 2), 3; got != want {
		t.Errorf("cpuShare(colocated, 2) = %d, want %d", got, want)
	}
	if got, want := tuning.GoMaxProcs(cpuShare(Separate, 2)), GoMaxProcs(2); got != want {
		t.Errorf("the share of separate, 2 replicas = %d, want GoMaxProcs's %d", got, want)
	}
	// The server, the gateway and HAProxy share the cores.
	if got, want := GoMaxProcs(1), max(1, runtime.NumCPU()/3); got != want {
		t.Errorf("GoMaxProcs(1) = %d, want %d on %d cores", got, want, runtime.NumCPU())
	}
}
