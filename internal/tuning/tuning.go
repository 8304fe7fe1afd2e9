// Package tuning holds the Go runtime settings that codename-server and
// codename-gateway apply to themselves at start: the garbage collector's
// target, and their share of the host's cores when they share it with other
// busy processes. The binaries apply them, not the run command, so that a
// deployment without codename-stack (systemd, Compose) runs them as the run
// command does; codename-stack only says how many processes share the cores.
package tuning

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/codename-gateway/codename-gateway/internal/envflag"
)

// GCPercent is the garbage collector's target the binaries run with. Their
// live heap is a few megabytes, so at Go's default of 100 the collector runs
// after every few megabytes of calls; at 200 it runs half as often, for
// about 12 % less CPU per call in the server and in the gateway and no
// change in memory per held stream (bench/).
const GCPercent = 200

// ShareEnv names the setting that says how many busy processes share this
// host's cores; the binaries read it as the flag -cpu-share.
const ShareEnv = "CODENAME_CPU_SHARE"

// Flags defines the flag -cpu-share on fs, and names in its help the
// variables of the Go runtime that Apply leaves to the environment. Give
// what it returns to Apply once fs is parsed.
func Flags(fs *envflag.Set) *int {
	fs.AlsoReads("GOGC", "the Go garbage collector's target (default here 200, where Go's is 100)")
	fs.AlsoReads("GOMAXPROCS", "cores Go schedules on; set, it wins over -cpu-share")
	return fs.Int("cpu-share", "CODENAME_CPU_SHARE", 0, "how many busy processes share this host's cores, this one and HAProxy included: Go then schedules on cores ÷ that many, at least one, as a container's CPU limit would give it (0: every core, or the container's CPU limit; codename-stack sets it; a GOMAXPROCS in the environment wins)")
}

// Apply sets the garbage collector's target to GCPercent unless GOGC is in
// the environment, and, when share is above zero and GOMAXPROCS is not in
// the environment, GOMAXPROCS to this process's share of the cores. What
// the environment sets wins, as it does for every Go program.
//
// Sharing the cores this way matters when several Go processes and HAProxy
// run on one host without CPU limits: Go gives each process as many
// schedulers as there are cores, so that they all contend for all of them
// and the runtimes spend their time parking and waking threads. With its
// share instead, the server and the gateway spend 25-30 % less CPU per call
// on 2 cores (bench/).
func Apply(getenv func(string) string, share int) error {
	if share < 0 {
		return fmt.Errorf("-cpu-share %d: want the number of processes sharing the cores, or 0", share)
	}
	if getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
	if share > 0 && getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(GoMaxProcs(share))
	}
	return nil
}

// GoMaxProcs is the GOMAXPROCS of one of share busy processes on this
// machine's cores.
func GoMaxProcs(share int) int { return coreShare(runtime.NumCPU(), share) }

// coreShare is an equal share of cores among share processes, at least one.
func coreShare(cores, share int) int { return max(1, cores/share) }
