package stack

import (
	"runtime"
	"testing"
)

func TestGoMaxProcsShareTheCores(t *testing.T) {
	for replicas := 1; replicas <= MaxReplicas; replicas++ {
		got := GoMaxProcs(replicas)
		if got < 1 {
			t.Errorf("GoMaxProcs(%d) = %d, want at least 1", replicas, got)
		}
		// 2*replicas Go processes and HAProxy together stay within the
		// cores, unless each already has the minimum of one.
		if got > 1 && got*(2*replicas+1) > runtime.NumCPU() {
			t.Errorf("GoMaxProcs(%d) = %d: %d processes would use more than the %d cores", replicas, got, 2*replicas+1, runtime.NumCPU())
		}
	}
}
