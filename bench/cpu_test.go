package main

import (
	"syscall"
	"testing"
	"time"
)

// processCPU returns the CPU time this process has used so far, user and
// system, in all its threads.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measureCPU starts counting the CPU time the whole process uses; the
// function it returns makes b report it per operation as cpu-ns/op, beside
// the wall time of ns/op. On a shared machine ns/op swings with the
// neighbours' load; CPU per operation much less, so it is the figure to
// compare. Call it just before the loop and its result just after.
func measureCPU(b *testing.B) (stop func()) {
	start := processCPU(b)
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
		}
	}
}
