package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
)

// children returns the child processes of pid. HAProxy in master-worker
// mode (-W) does its work in the master's children, so its cost is theirs.
// procfs has no reader for this file; without it, finding them would mean
// reading the stat of every process on the machine for its parent.
func children(pid int) ([]int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		c, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		pids = append(pids, c)
	}
	return pids, nil
}

// loadAverage returns the machine's load averages over 1, 5 and 15
// minutes, as /proc/loadavg shows them: a run on a busy machine says so.
func loadAverage() string {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return "unknown"
	}
	l, err := fs.LoadAvg()
	if err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.2f %.2f %.2f", l.Load1, l.Load5, l.Load15)
}

// group is a set of processes whose cost is counted together: the Go
// processes of a REST request, or HAProxy's workers. Workers are looked up
// at every reading, so a group follows a master whose workers change.
type group struct {
	name string
	// pids returns the processes to count now.
	pids func() ([]int, error)
}

// single is a group of one process.
func single(name string, pid int) group {
	return group{name, func() ([]int, error) { return []int{pid}, nil }}
}

// workersOf is the group of master's children.
func workersOf(name string, master int) group {
	return group{name, func() ([]int, error) { return children(master) }}
}

// union is a group of every process in gs.
func union(name string, gs ...group) group {
	return group{name, func() ([]int, error) {
		var all []int
		for _, g := range gs {
			p, err := g.pids()
			if err != nil {
				return nil, err
			}
			all = append(all, p...)
		}
		return all, nil
	}}
}

// cpu returns the CPU seconds, user plus system, the group's processes
// have used so far. /proc/<pid>/stat counts a process's every thread, so a
// multi-threaded HAProxy worker is counted whole.
func (g group) cpu() (float64, error) {
	return g.sum(func(st procfs.ProcStat) float64 { return st.CPUTime() })
}

// rss returns the resident memory of the group's processes, in bytes.
func (g group) rss() (float64, error) {
	return g.sum(func(st procfs.ProcStat) float64 { return float64(st.ResidentMemory()) })
}

func (g group) sum(read func(procfs.ProcStat) float64) (float64, error) {
	pids, err := g.pids()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", g.name, err)
	}
	if len(pids) == 0 {
		return 0, fmt.Errorf("%s: no process", g.name)
	}
	var total float64
	for _, pid := range pids {
		p, err := procfs.NewProc(pid)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", g.name, err)
		}
		st, err := p.Stat()
		if err != nil {
			return 0, fmt.Errorf("%s: %w", g.name, err)
		}
		total += read(st)
	}
	return total, nil
}

// cpuMeter measures the CPU seconds groups use between start and stop.
type cpuMeter struct {
	groups []group
	before []float64
}

func startCPU(groups ...group) (*cpuMeter, error) {
	m := &cpuMeter{groups: groups}
	for _, g := range groups {
		v, err := g.cpu()
		if err != nil {
			return nil, err
		}
		m.before = append(m.before, v)
	}
	return m, nil
}

// stop returns the CPU seconds each group used since start, by the
// group's name.
func (m *cpuMeter) stop() (map[string]float64, error) {
	used := make(map[string]float64, len(m.groups))
	for i, g := range m.groups {
		v, err := g.cpu()
		if err != nil {
			return nil, err
		}
		used[g.name] = v - m.before[i]
	}
	return used, nil
}

// perOp turns the CPU seconds of stop into µs per operation, over ops
// operations (calls or messages).
func perOp(used map[string]float64, ops float64) map[string]float64 {
	per := make(map[string]float64, len(used))
	for name, secs := range used {
		per[name] = secs / ops * 1e6
	}
	return per
}
