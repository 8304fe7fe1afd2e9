package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/poll"
	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// TestHAProxyWorkersCounted checks, for every HAProxy binary installed,
// that the CPU of a master-worker HAProxy is found where the benchmark
// looks for it: in the master's children, by PID, whatever name the
// binary gives its processes (one started through bin/haproxy-3.0 is
// "haproxy-3.0" in /proc/<pid>/comm, and the 3.x master re-executes
// itself). The workers must account for the CPU that serving requests
// costs.
func TestHAProxyWorkersCounted(t *testing.T) {
	root := longTestRoot(t, "starts HAProxy")
	for _, b := range haproxyBins {
		t.Run(b.label, func(t *testing.T) {
			binary := b.path
			if strings.Contains(binary, "/") {
				binary = filepath.Join(root, binary)
			}
			if _, err := exec.LookPath(binary); err != nil {
				if b.optional {
					t.Skipf("%s is not installed (scripts/setup.sh test installs it)", b.label)
				}
				t.Fatal(err)
			}
			addr, err := stack.FreeAddr()
			if err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
			const conf = "global\n    noreuseport\ndefaults\n    mode http\n    timeout client 5s\n    timeout connect 5s\n    timeout server 5s\nfrontend fe\n    bind %s\n    http-request return status 200\n"
			if err := os.WriteFile(cfg, fmt.Appendf(nil, conf, addr), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(binary, "-W", "-db", "-f", cfg)
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				_ = cmd.Wait()
			})
			master := cmd.Process.Pid
			workers := workersOf("workers", master)
			if _, ok := poll.Until(10*time.Second, func() bool {
				// h2load exits 0 even when it could not connect; a 3.1+
				// master forks its worker before the worker binds.
				out, _ := exec.Command("h2load", "-n", "1", addr2URL(addr)).Output()
				return strings.Contains(string(out), " 1 succeeded")
			}); !ok {
				t.Fatalf("%s: no worker answering after 10 s", b.label)
			}
			pids, err := workers.pids()
			if err != nil || len(pids) == 0 {
				t.Fatalf("%s: no worker: %v", b.label, err)
			}
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pids[0]))
			all := union("master and workers", single("master", master), workers)
			meter, err := startCPU(workers, all)
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("h2load", "-D", "1", "-c", "2", "-m", "16", addr2URL(addr)).CombinedOutput()
			if err != nil || !strings.Contains(string(out), " 0 failed, 0 errored") {
				t.Fatalf("h2load: %v\n%s", err, out)
			}
			used, err := meter.stop()
			if err != nil {
				t.Fatal(err)
			}
			w, a := used["workers"], used["master and workers"]
			t.Logf("%s: workers %v (comm %q) used %.2f s of the %.2f s of master and workers", b.label, pids, strings.TrimSpace(string(comm)), w, a)
			if w < 0.05 || w < 0.8*a {
				t.Errorf("%s: workers used %.2f s of CPU in 1 s of h2c load, master and workers %.2f s", b.label, w, a)
			}
		})
	}
}

func addr2URL(addr string) string { return "http://" + addr + "/" }
