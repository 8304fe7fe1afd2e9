package stack

import "github.com/codename-gateway/codename-gateway/internal/tuning"

// cpuShare is how many busy processes share the cores in a stack of
// replicas in mode: its Go processes and HAProxy. The stack passes it to
// the server and the gateway as CODENAME_CPU_SHARE, and each takes its
// share of the cores by internal/tuning's policy, as a container CPU limit
// would give it.
func cpuShare(mode string, replicas int) int { return goProcesses(mode, replicas) + 1 }

// goProcesses is how many Go processes a stack of replicas runs in mode.
func goProcesses(mode string, replicas int) int {
	if mode == Colocated {
		return replicas
	}
	return 2 * replicas
}

// GoMaxProcs is the GOMAXPROCS each Go process of a stack with replicas
// servers and as many gateways takes: an equal share of the cores with
// HAProxy, at least one.
func GoMaxProcs(replicas int) int { return tuning.GoMaxProcs(cpuShare(Separate, replicas)) }
