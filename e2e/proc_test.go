package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/poll"
	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// toolProc is a process a test started that is not part of the stack: a
// conformance tool, Prometheus, dnsmasq, or HAProxy alone (edgeOnly). It
// is stopped by PID when the test ends. It stays apart from start, which
// starts systems: these are the programs around one.
type toolProc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// startToolProc starts argv with env, its output collected, and stops it
// (SIGTERM, then SIGKILL after 5 s) when the test ends; its output is shown
// if the test failed.
func startToolProc(t testing.TB, name string, argv, env []string) *toolProc {
	t.Helper()
	c := &toolProc{name: name, cmd: exec.Command(argv[0], argv[1:]...), out: new(syncBuffer), done: make(chan struct{})}
	c.cmd.Env = env
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	// The child dies with the test binary even if that is killed, and a
	// Ctrl-C reaches only the test binary.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
			if !t.Failed() {
				t.Errorf("%s exited before the test ended: %v\n%s", name, c.cmd.ProcessState, outputTail(c.out.String(), 4000))
			}
			return
		default:
		}
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		timer := time.NewTimer(5 * time.Second)
		defer timer.Stop()
		select {
		case <-c.done:
		case <-timer.C:
			_ = c.cmd.Process.Kill()
			<-c.done
			t.Errorf("%s did not stop on SIGTERM and was killed", name)
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, outputTail(c.out.String(), 8000))
		}
	})
	return c
}

// exited reports whether the child has exited.
func (c *toolProc) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// accepts returns nil once the child accepts connections at addr; a
// child that has exited never will, which ends a poll.Check at once.
func (c *toolProc) accepts(addr string) error {
	if c.exited() {
		return fmt.Errorf("%s exited (%w):\n%s", c.name, poll.ErrGiveUp, outputTail(c.out.String(), 4000))
	}
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return conn.Close()
}

// freeAddrList returns n distinct loopback addresses that were free a moment
// ago.
func freeAddrList(t testing.TB, n int) []string {
	t.Helper()
	seen := map[string]bool{}
	var addrs []string
	for len(addrs) < n {
		a, err := stack.FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		if !seen[a] {
			seen[a] = true
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// environWithout is this process's environment without the variables
// whose names start with prefix, so that a developer's settings do not
// leak into a child configured by the test.
func environWithout(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return env
}

// outputTail returns at most the last n bytes of s.
func outputTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}
