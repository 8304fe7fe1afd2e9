package runtest

import (
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"

	"github.com/codename-gateway/codename-gateway/internal/tuning"
)

// CheckTuning starts a binary with start, once with CODENAME_CPU_SHARE
// set and once with GOGC and GOMAXPROCS set too, waits for its "serving
// what" line, and checks that run applied internal/tuning's settings to
// the runtime, or left them to the environment. run runs in this process:
// the runtime read back is its.
func CheckTuning(t *testing.T, start func(env map[string]string) *Run, what string) {
	t.Helper()
	gc, procs := debug.SetGCPercent(100), runtime.GOMAXPROCS(0)
	t.Cleanup(func() {
		debug.SetGCPercent(gc)
		runtime.GOMAXPROCS(procs)
	})
	// before stands for the runtime's own setting: no share gives it.
	before := runtime.NumCPU() + 3
	const share = 2
	for _, tt := range []struct {
		name             string
		env              map[string]string
		wantGC, wantProc int
	}{
		{"defaults", map[string]string{tuning.ShareEnv: strconv.Itoa(share)}, tuning.GCPercent, tuning.GoMaxProcs(share)},
		{"the environment wins", map[string]string{tuning.ShareEnv: strconv.Itoa(share), "GOGC": "50", "GOMAXPROCS": "1"}, 100, before},
	} {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			runtime.GOMAXPROCS(before)
			r := start(tt.env)
			r.Addr(t, what)
			gotGC := debug.SetGCPercent(100)
			if gotProc := runtime.GOMAXPROCS(0); gotGC != tt.wantGC || gotProc != tt.wantProc {
				t.Errorf("run with %v: GC percent %d, GOMAXPROCS %d; want %d and %d", tt.env, gotGC, gotProc, tt.wantGC, tt.wantProc)
			}
			if err := r.Stop(t); err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
}
