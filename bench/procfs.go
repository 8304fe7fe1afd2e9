package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is the unit of utime and stime in /proc/<pid>/stat. It is
// sysconf(_SC_CLK_TCK), which Linux fixes at 100 on every architecture Go
// runs on (USER_HZ); reading it would need cgo, so it is a constant here.
const clockTicks = 100

// cpuTime returns the CPU time, user plus system, that process pid has used
// so far, in seconds. /proc/<pid>/stat counts the whole thread group, so a
// multi-threaded HAProxy worker is counted whole.
func cpuTime(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// the fields after its closing parenthesis start at field 3.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// utime and stime are fields 14 and 15, that is f[11] and f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return float64(utime+stime) / clockTicks, nil
}

// rssBytes returns the resident set size of process pid (VmRSS).
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v) // "1234 kB"
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status: VmRSS %q", pid, v)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// children returns the child processes of pid. HAProxy in master-worker
// mode (-W) does its work in the master's children, so its cost is theirs.
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

// cpu returns the CPU seconds the group's processes have used so far.
func (g group) cpu() (float64, error) {
	return g.sum(cpuTime)
}

// rss returns the resident memory of the group's processes, in bytes.
func (g group) rss() (float64, error) {
	return g.sum(func(pid int) (float64, error) {
		n, err := rssBytes(pid)
		return float64(n), err
	})
}

func (g group) sum(read func(int) (float64, error)) (float64, error) {
	pids, err := g.pids()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", g.name, err)
	}
	if len(pids) == 0 {
		return 0, fmt.Errorf("%s: no process", g.name)
	}
	var total float64
	for _, pid := range pids {
		v, err := read(pid)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", g.name, err)
		}
		total += v
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

// stop returns the CPU seconds each group used since start, in order.
func (m *cpuMeter) stop() ([]float64, error) {
	used := make([]float64, len(m.groups))
	for i, g := range m.groups {
		v, err := g.cpu()
		if err != nil {
			return nil, err
		}
		used[i] = v - m.before[i]
	}
	return used, nil
}
