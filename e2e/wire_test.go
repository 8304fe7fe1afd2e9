package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/poll"
)

// captureLoopback runs tcpdump on the loopback interface for the TCP ports
// of addrs until stop is called, which returns what it captured (the raw
// pcap file: enough to look for bytes in the clear).
func captureLoopback(t *testing.T, addrs ...string) (stop func() []byte) {
	t.Helper()
	var ports []string
	for _, a := range addrs {
		_, port, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, port)
	}
	return capture(t, "", "lo", addrs[0], ports...)
}

// capture runs tcpdump on interface iface of network namespace netns (""
// for this one) for the given TCP ports until stop is called, which
// returns what it captured. A connection from here to probe must cross
// iface on one of the ports: it shows when tcpdump captures.
func capture(t *testing.T, netns, iface, probe string, ports ...string) (stop func() []byte) {
	t.Helper()
	tcpdump, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Fatal("tcpdump is not installed (scripts/setup.sh test installs it)")
	}
	var filter []string
	for _, p := range ports {
		filter = append(filter, "tcp port "+p)
	}
	file := filepath.Join(t.TempDir(), "capture.pcap")
	// -Z root: tcpdump would otherwise drop to its own user, which cannot
	// write into the test's private temporary folder.
	argv := []string{tcpdump, "-i", iface, "-U", "-s", "0", "-Z", "root", "-w", file, strings.Join(filter, " or ")}
	if netns != "" {
		argv = append([]string{"ip", "netns", "exec", netns}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	// A connection to probe is captured once tcpdump really captures, and
	// once it has written all before it: wait for it to show in the file,
	// at the start and before stopping.
	probeOnce := func() {
		before := fileSize(file)
		if c, err := net.DialTimeout("tcp", probe, time.Second); err == nil {
			c.Close()
		}
		poll.For(t, "tcpdump to write what it captured", 10*time.Second, func() error { return grown(file, before) })
	}
	stopped := false
	stop = func() []byte {
		if !stopped {
			probeOnce()
			stopped = true
			_ = cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("tcpdump: %v\n%s", err, out.String())
		}
		return b
	}
	t.Cleanup(func() { stop() })
	poll.For(t, "tcpdump to start", 10*time.Second, func() error { return grown(file, 0) })
	probeOnce()
	return stop
}

// wireCalls makes gRPC and REST calls through the edge and returns the
// codenames they got, which then crossed every hop behind it.
func wireCalls(t *testing.T, s *system) []string {
	t.Helper()
	var names []string
	client := s.grpcClient(t, true)
	for range 5 {
		res, err := client.GetCodename(t.Context(), &codenamev1.NameRequest{Category: "science"})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, res.GetName())
	}
	c := transports[0].client(t, s)
	for range 5 {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", s.httpsURL("/v1/codename?category=science"), nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		var name string
		if _, err := fmt.Sscanf(string(b), `{"name":%q}`, &name); err != nil {
			t.Fatalf("answer %q: %v", b, err)
		}
		names = append(names, name)
	}
	return names
}

// TestNoCleartextBehindTheEdge captures the traffic to the gRPC server and
// the gateway while calls go through the edge over TLS: with TLS behind
// the edge (the default) no codename crosses those hops in the clear; with
// CODENAME_BACKEND_TLS=off every one does, which shows that the capture
// sees the traffic it looks through.
func TestNoCleartextBehindTheEdge(t *testing.T) {
	for _, mode := range []string{"mutual", "off"} {
		t.Run(mode, func(t *testing.T) {
			s := start(t, backendTLS(mode))
			stop := captureLoopback(t, s.cfg.GRPCAddrs[0], s.cfg.GatewayAddrs[0])
			names := wireCalls(t, s)
			captured := stop()
			seen := countIn(captured, names)
			t.Logf("%s: %d of %d codenames seen in %d bytes captured behind the edge", mode, seen, len(names), len(captured))
			switch {
			case mode == "off" && seen != len(names):
				t.Errorf("with cleartext backends the capture found %d of %d codenames, want all: it does not see the traffic", seen, len(names))
			case mode != "off" && seen != 0:
				t.Errorf("with TLS behind the edge, %d codenames crossed in the clear", seen)
			}
		})
	}
}

// fileSize is the size of the file at path, 0 if it is not there yet.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// grown returns nil once the file at path is larger than size bytes.
func grown(path string, size int64) error {
	if n := fileSize(path); n <= size {
		return fmt.Errorf("%s has %d bytes, want more than %d", path, n, size)
	}
	return nil
}

// countIn counts the names found in captured.
func countIn(captured []byte, names []string) int {
	seen := 0
	for _, n := range names {
		if bytes.Contains(captured, []byte(n)) {
			seen++
		}
	}
	return seen
}

// TestNoCleartextBetweenHosts captures, on hosts of their own, the edge
// host's link (its hops to the servers and the gateways) and a gateway
// host's link (its hop to the servers) while calls go through the edge:
// with TLS behind the edge no codename crosses either in the clear; with
// CODENAME_BACKEND_TLS=off they do, which shows that the captures see the
// traffic they look through.
func TestNoCleartextBetweenHosts(t *testing.T) {
	t.Parallel() // on hosts of its own: see onHosts
	for _, mode := range []string{"mutual", "off"} {
		t.Run(mode, func(t *testing.T) {
			h := start(t, onHosts("server1", "server2"), backendTLS(mode)).hosts
			edge := capture(t, h.net.Host("edge").Netns, "eth0", h.sys.cfg.HTTPAddr, "9090", "8081", "8080")
			gateway := capture(t, h.net.Host("gateway1").Netns, "eth0", h.net.Host("gateway1").Addr+":8081", "9090", "8081")
			names := wireCalls(t, h.sys)
			atEdgeCapture, atGatewayCapture := edge(), gateway()
			atEdge, atGateway := countIn(atEdgeCapture, names), countIn(atGatewayCapture, names[5:])
			// The category the calls asked for travels in each gRPC
			// request message, as bytes of its own.
			category := bytes.Contains(atEdgeCapture, []byte("science")) || bytes.Contains(atGatewayCapture, []byte("science"))
			t.Logf("%s: %d of %d codenames seen on the edge host's link, %d of %d REST ones on gateway1's; the category seen: %v", mode, atEdge, len(names), atGateway, len(names)-5, category)
			if category != (mode == "off") {
				t.Errorf("with CODENAME_BACKEND_TLS=%s, the category seen in the clear between hosts: %v", mode, category)
			}
			switch {
			// Some, not all: a full run once saw 4 of 10 at the edge (10 of
			// 10 alone), likely a name split over two segments or a packet
			// tcpdump missed on a busy machine. Some is what shows that the
			// captures see the traffic; "none with TLS" is the claim.
			case mode == "off" && (atEdge == 0 || atGateway == 0):
				t.Errorf("with cleartext backends the captures found %d of %d codenames at the edge and %d at gateway1, want some at each: they do not see the traffic", atEdge, len(names), atGateway)
			case mode != "off" && atEdge+atGateway != 0:
				t.Errorf("with TLS behind the edge, codenames crossed between hosts in the clear: %d at the edge, %d at gateway1", atEdge, atGateway)
			}
		})
	}
}
