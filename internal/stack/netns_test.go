package stack

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/poll"
)

// TestNetwork: the hosts of a Network reach this namespace over the
// bridge, `ip netns exec` execs the command (so the stack's PID is the
// child's), and Close leaves nothing behind.
func TestNetwork(t *testing.T) {
	n, err := NewNetwork("a", "b")
	if err != nil {
		t.Fatalf("cannot make a network of hosts (needs root and iproute2's ip netns): %v", err)
	}
	t.Cleanup(func() { n.Close() })
	if got, want := n.Host("b").Addr, n.Prefix+".3"; got != want {
		t.Errorf("b's address: got %s, want %s", got, want)
	}

	l, err := net.Listen("tcp", n.Prefix+".1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	for _, h := range []string{"a", "b"} {
		cmd := exec.Command("ip", "netns", "exec", n.Host(h).Netns, "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s.1/%s", n.Prefix, port))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("host %s cannot reach the bridge: %v %s", h, err, out)
			continue
		}
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got, _, _ := net.SplitHostPort(c.RemoteAddr().String()); got != n.Host(h).Addr {
			t.Errorf("connection from %s, want %s", got, n.Host(h).Addr)
		}
		c.Close()
	}

	// A connection dialled from b comes from b's address, and this
	// namespace is left as it was.
	dial := n.DialContext("b")
	for range 3 {
		c, err := dial(t.Context(), "tcp", l.Addr().String())
		if err != nil {
			t.Fatalf("dial from b: %v", err)
		}
		in, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if got, _, _ := net.SplitHostPort(in.RemoteAddr().String()); got != n.Host("b").Addr {
			t.Errorf("connection dialled from b comes from %s, want %s", got, n.Host("b").Addr)
		}
		in.Close()
		c.Close()
	}
	if _, err := net.InterfaceByName(n.Bridge); err != nil {
		t.Errorf("after dialling from b, this namespace lost its bridge %s: %v", n.Bridge, err)
	}

	cmd := exec.Command("ip", "netns", "exec", n.Host("a").Netns, "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	comm := func() string {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid))
		return strings.TrimSpace(string(b))
	}
	if d, ok := poll.Until(5*time.Second, func() bool { return comm() == "sleep" }); !ok {
		t.Errorf("PID %d is %q after %v, want the command itself (sleep)", cmd.Process.Pid, comm(), d)
	}

	ns := n.Host("a").Netns
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), ns) {
		t.Errorf("namespace left after Close:\n%s", out)
	}
	if _, err := net.InterfaceByName(n.Bridge); err == nil {
		t.Errorf("bridge %s left after Close", n.Bridge)
	}
}

// TestImpair: an impaired link delays each frame both ways, so a TCP
// handshake from the host takes at least two delays; Close gives the link
// back as it was.
func TestImpair(t *testing.T) {
	n, err := NewNetwork("a")
	if err != nil {
		t.Fatalf("cannot make a network of hosts (needs root and iproute2's ip netns): %v", err)
	}
	t.Cleanup(func() { n.Close() })
	l, err := net.Listen("tcp", n.Prefix+".1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dial := n.DialContext("a")
	handshake := func() time.Duration {
		t.Helper()
		start := time.Now()
		c, err := dial(t.Context(), "tcp", l.Addr().String())
		if err != nil {
			t.Fatalf("dial from a: %v", err)
		}
		c.Close()
		return time.Since(start)
	}
	const delay = 60 * time.Millisecond
	im, err := n.Impair("a", delay, 0)
	if err != nil {
		t.Fatalf("Impair (needs ethtool): %v", err)
	}
	if got := handshake(); got < 2*delay {
		t.Errorf("handshake over the impaired link took %v, want at least %v", got, 2*delay)
	}
	if err := im.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// The first handshake may be slow while the bridge takes the host's
	// link back (a SYN lost and sent again after a second).
	if d, ok := poll.Until(5*time.Second, func() bool { return handshake() < delay }); !ok {
		t.Errorf("handshakes still took %v or more %v after Close", delay, d)
	}

	// An impairment still in place when the network closes goes with it:
	// its relay's interfaces are in this namespace.
	if _, err := n.Impair("a", delay, 0); err != nil {
		t.Fatal(err)
	}
	relay := fmt.Sprintf("cg%sa0", strings.TrimPrefix(n.Bridge, "cgbr"))
	if _, err := net.InterfaceByName(relay); err != nil {
		t.Fatalf("the relay's interface %s: %v", relay, err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.InterfaceByName(relay); err == nil {
		t.Errorf("the relay's interface %s is left after the network closed", relay)
	}
}
