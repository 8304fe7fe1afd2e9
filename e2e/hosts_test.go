package e2e

import (
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

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"

	"github.com/codename-gateway/codename-gateway/internal/poll"
	"github.com/codename-gateway/codename-gateway/internal/promtest"
	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// The DNS names the host tests serve: haproxy.cfg's server-templates and
// the gateways' dns:/// target read the replicas from them.
const (
	serverDNSName  = "codename-server.test"
	gatewayDNSName = "codename-gateway.test"
)

// hostNet is the private network of hosts a system started with onHosts
// runs on, each host in a network namespace of its own, with a DNS server
// (dnsmasq) that lists the replicas.
type hostNet struct {
	net *stack.Network
	sys *system // the system on it
	// dial connects from the client host, as every call of the host
	// tests does.
	dial  dialFunc
	dns   *toolProc
	hosts string // dnsmasq's addn-hosts file
	// records lists the hosts each DNS name has records for.
	records map[string][]string
	grpcOf  map[string]string
	admin   map[string]string // admin (metrics) address per server host
}

// newHostNet makes the network (edge, dns, server1, server2, gateway1,
// gateway2, client) for start, starts dnsmasq with records for sp's
// servers, and places every child of sp on its own host: HAProxy finds
// the servers and gateways by DNS (CODENAME_GRPC_DNS,
// CODENAME_GATEWAY_DNS), the gateways find the servers by DNS
// (dns:///codename-server.test:9090). Everything is removed in Cleanup.
func newHostNet(t testing.TB, sp *spec) *hostNet {
	t.Helper()
	n, err := stack.NewNetwork("edge", "dns", "server1", "server2", "gateway1", "gateway2", "client")
	if err != nil {
		t.Fatalf("cannot make the test network of hosts (network namespaces need root and iproute2's `ip netns`): %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("remove the network: %v", err)
		}
	})
	h := &hostNet{net: n, grpcOf: map[string]string{}, admin: map[string]string{}, dial: n.DialContext("client")}
	for _, s := range []string{"server1", "server2"} {
		h.grpcOf[s] = n.Host(s).Addr + ":9090"
		h.admin[s] = n.Host(s).Addr + ":9091"
	}
	h.startDNS(t, sp.hostServers)
	for _, host := range []string{"edge", "gateway1", "gateway2"} {
		if err := n.SetResolver(host, n.Host("dns").Addr); err != nil {
			t.Fatal(err)
		}
	}

	// Separate: the gateways are hosts of their own here.
	sp.env = append([]string{
		stack.GatewayModeEnv + "=" + stack.Separate,
		"CODENAME_GRPC_DNS=" + serverDNSName + ":9090",
		"CODENAME_GATEWAY_DNS=" + gatewayDNSName + ":8081",
	}, sp.env...)
	edge := n.Host("edge").Addr
	placement := map[string]string{"haproxy": "edge", "server-1": "server1", "server-2": "server2", "gateway-1": "gateway1", "gateway-2": "gateway2"}
	sp.place = func(cfg *stack.Config) {
		cfg.GatewayTarget = "dns:///" + serverDNSName + ":9090"
		cfg.HTTPSAddr, cfg.HTTPAddr, cfg.StatsAddr = edge+":8443", edge+":8080", edge+":8404"
		cfg.GRPCAddrs = []string{h.grpcOf["server1"], h.grpcOf["server2"]}
		cfg.GRPCAdminAddrs = []string{h.admin["server1"], h.admin["server2"]}
		cfg.GatewayAddrs = []string{n.Host("gateway1").Addr + ":8081", n.Host("gateway2").Addr + ":8081"}
		cfg.GatewayAdminAddrs = []string{n.Host("gateway1").Addr + ":8082", n.Host("gateway2").Addr + ":8082"}
		cfg.Netns = func(child string) string { return n.Host(placement[child]).Netns }
	}
	return h
}

// startDNS runs dnsmasq on the dns host, answering for the .test names
// from a hosts file that setDNS rewrites, and nothing else: at first, the
// given server hosts and both gateways.
func (h *hostNet) startDNS(t testing.TB, servers []string) {
	t.Helper()
	h.hosts = filepath.Join(t.TempDir(), "hosts")
	h.records = map[string][]string{serverDNSName: servers, gatewayDNSName: {"gateway1", "gateway2"}}
	h.writeHosts(t)
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		t.Fatalf("start dnsmasq (apt-get install dnsmasq-base; scripts/setup.sh test): %v", err)
	}
	addr := h.net.Host("dns").Addr
	h.dns = startToolProc(t, "dnsmasq", []string{"ip", "netns", "exec", h.net.Host("dns").Netns, "dnsmasq",
		"--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--addn-hosts=" + h.hosts,
		"--listen-address=" + addr, "--bind-interfaces", "--local=/test/", "--user=root", "--pid-file",
		"--log-facility=-"}, os.Environ())
	poll.For(t, "dnsmasq to answer for "+serverDNSName, 10*time.Second, func() error {
		if got := h.lookup(serverDNSName); len(got) != len(servers) {
			return fmt.Errorf("%d addresses %v, want %d", len(got), got, len(servers))
		}
		return nil
	})
}

// writeHosts writes h.records for dnsmasq.
func (h *hostNet) writeHosts(t testing.TB) {
	t.Helper()
	var b strings.Builder
	for name, hosts := range h.records {
		for _, host := range hosts {
			fmt.Fprintf(&b, "%s %s\n", h.net.Host(host).Addr, name)
		}
	}
	if err := os.WriteFile(h.hosts, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// setDNS makes the servers' record list exactly servers, and returns once
// dnsmasq answers so.
func (h *hostNet) setDNS(t *testing.T, servers ...string) {
	t.Helper()
	h.setRecords(t, serverDNSName, servers)
}

// setRecords makes the records of name exactly those of hosts, and returns
// once dnsmasq answers so.
func (h *hostNet) setRecords(t *testing.T, name string, hosts []string) {
	t.Helper()
	h.records[name] = hosts
	h.writeHosts(t)
	if err := h.dns.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	want := make([]string, len(hosts))
	for i, s := range hosts {
		want[i] = h.net.Host(s).Addr
	}
	poll.For(t, fmt.Sprintf("dnsmasq to answer %v for %s after SIGHUP", want, name), 5*time.Second, func() error {
		if got := h.lookup(name); len(got) != len(want) || !containsAll(got, want) {
			return fmt.Errorf("it answers %v", got)
		}
		return nil
	})
}

// lookup asks dnsmasq directly for name's addresses.
func (h *hostNet) lookup(name string) []string {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, h.net.Host("dns").Addr+":53")
	}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	got, _ := r.LookupHost(ctx, name)
	return got
}

func containsAll(got, want []string) bool {
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			return false
		}
	}
	return true
}

// handled reads GetCodename calls finished OK by each server host.
func (h *hostNet) handled(t *testing.T) map[string]float64 {
	t.Helper()
	return h.counters(t, h.admin, "grpc_server_handled_total")
}

// counters reads the GetCodename calls finished OK that counter name of
// each host's admin listener (addrs) counts so far.
func (h *hostNet) counters(t *testing.T, addrs map[string]string, name string) map[string]float64 {
	t.Helper()
	n := map[string]float64{}
	for s, a := range addrs {
		// A count not yet created is zero so far.
		n[s], _ = promtest.Sum(h.sys.get(t, "http://"+a+"/metrics"), name, map[string]string{"grpc_code": "OK", "grpc_method": "GetCodename"})
	}
	return n
}

// checkStatus returns the check_status of server sv in backend be from
// HAProxy's stats ("L7OK", "* L7TOUT", ...).
func (h *hostNet) checkStatus(t *testing.T, be, sv string) string {
	t.Helper()
	for _, r := range h.sys.statsRows(t) {
		if r["pxname"] == be && r["svname"] == sv {
			return r["check_status"]
		}
	}
	return ""
}

// viaGateway reads the GetCodename calls each gateway host has made.
func (h *hostNet) viaGateway(t *testing.T) map[string]float64 {
	t.Helper()
	return h.counters(t, map[string]string{
		"gateway1": h.net.Host("gateway1").Addr + ":8082",
		"gateway2": h.net.Host("gateway2").Addr + ":8082",
	}, "grpc_client_handled_total")
}

// hostCalls makes calls through the edge and counts the failures.
type hostCalls struct {
	grpc   codenamev1.CodenameCreatorClient
	rest   *http.Client
	url    string
	ok     int
	failed int
	errs   []string
}

func (c *hostCalls) note(err error) {
	if err == nil {
		c.ok++
		return
	}
	c.failed++
	if len(c.errs) < 5 {
		c.errs = append(c.errs, err.Error())
	}
}

func (c *hostCalls) grpcBatch(ctx context.Context, n int) {
	for range n {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.grpc.GetCodename(ctx, &codenamev1.NameRequest{})
		cancel()
		c.note(err)
	}
}

func (c *hostCalls) restBatch(ctx context.Context, n int) {
	for range n {
		c.note(func() error {
			req, err := http.NewRequestWithContext(ctx, "GET", c.url, nil)
			if err != nil {
				return err
			}
			resp, err := c.rest.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("REST: %s %s", resp.Status, b)
			}
			return nil
		}())
	}
}

// calls returns a caller through the edge, in cleartext, from the client
// host.
func (h *hostNet) calls(t *testing.T) *hostCalls {
	t.Helper()
	return &hostCalls{
		grpc: h.grpcClient(t),
		rest: &http.Client{Transport: h.httpTransport(t), Timeout: 10 * time.Second},
		url:  h.sys.httpURL("/v1/codename"),
	}
}

// grpcClient calls the edge with gRPC in cleartext from the client host.
func (h *hostNet) grpcClient(t *testing.T) codenamev1.CodenameCreatorClient {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+h.sys.cfg.HTTPAddr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return h.dial(ctx, "tcp", addr) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return codenamev1.NewCodenameCreatorClient(conn)
}

// httpTransport makes HTTP connections from the client host.
func (h *hostNet) httpTransport(t *testing.T) *http.Transport {
	tr := &http.Transport{DialContext: h.dial}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// delta runs batch and returns how many calls each server finished in it.
func (h *hostNet) delta(t *testing.T, batch func()) map[string]float64 {
	before := h.handled(t)
	batch()
	after := h.handled(t)
	d := map[string]float64{}
	for s := range after {
		d[s] = after[s] - before[s]
	}
	return d
}

// TestHostsDiscoverReplicasByDNS: on separate hosts, HAProxy and the
// gateways find the servers through a real DNS server, follow a replica
// added and one removed by changing the records, and no call fails.
func TestHostsDiscoverReplicasByDNS(t *testing.T) {
	t.Parallel() // on hosts of its own: see onHosts
	began := time.Now()
	// The servers ask clients to reconnect every 3 s: the gateways' gRPC
	// DNS resolver looks the name up again only when a connection ends
	// (and at most every 30 s, grpc-go's minimum).
	h := start(t, onHosts("server1"), withEnv("CODENAME_MAX_CONN_AGE=3s")).hosts
	t.Logf("network %s.0/24 and stack up in %v", h.net.Prefix, time.Since(began).Round(time.Millisecond))

	c := h.calls(t)
	ctx := t.Context()

	// Only server1 is in DNS: every call lands there.
	d := h.delta(t, func() { c.grpcBatch(ctx, 50); c.restBatch(ctx, 50) })
	if d["server1"] != 100 || d["server2"] != 0 {
		t.Fatalf("with only server1 in DNS, 50 gRPC and 50 REST calls landed %v, want all 100 on server1 (failures: %d %v)", d, c.failed, c.errs)
	}

	// server2 joins: HAProxy and then the gateways send to it too.
	h.setDNS(t, "server1", "server2")
	added := time.Now()
	haproxyAdd, ok := poll.Until(20*time.Second, func() bool {
		return h.delta(t, func() { c.grpcBatch(ctx, 20) })["server2"] > 0
	})
	if !ok {
		t.Fatalf("gRPC through HAProxy did not reach server2 within %v of its record", haproxyAdd)
	}
	// Requests pass while a new server's first checks run (servers start
	// UP): its checks must pass too, or it is out within a second.
	for _, be := range []string{"be_grpc", "be_grpc_stream"} {
		for _, sv := range []string{"grpc1", "grpc2"} {
			if _, ok := poll.Until(5*time.Second, func() bool { return h.checkStatus(t, be, sv) == "L7OK" }); !ok {
				t.Fatalf("HAProxy's health check of %s/%s is %q, want L7OK, with both servers in DNS", be, sv, h.checkStatus(t, be, sv))
			}
		}
	}
	gatewayAdd, ok := poll.Until(45*time.Second, func() bool {
		return h.delta(t, func() { c.restBatch(ctx, 20) })["server2"] > 0
	})
	if !ok {
		t.Fatalf("REST through the gateways did not reach server2 within %v of its record", time.Since(added))
	}
	gatewayAdd = time.Since(added)
	t.Logf("server2 added to DNS: gRPC through HAProxy reached it after %v, REST through the gateways after %v",
		haproxyAdd.Round(10*time.Millisecond), gatewayAdd.Round(10*time.Millisecond))

	// server1 leaves DNS (still running): new calls reach only server2.
	h.setDNS(t, "server2")
	removed := time.Now()
	haproxyRemove, ok := poll.Until(30*time.Second, func() bool {
		return h.delta(t, func() { c.grpcBatch(ctx, 20) })["server1"] == 0
	})
	if !ok {
		t.Fatalf("gRPC through HAProxy still reached server1 %v after its record went", haproxyRemove)
	}
	_, ok = poll.Until(45*time.Second, func() bool {
		return h.delta(t, func() { c.restBatch(ctx, 20) })["server1"] == 0
	})
	gatewayRemove := time.Since(removed)
	if !ok {
		t.Fatalf("REST through the gateways still reached server1 %v after its record went", gatewayRemove)
	}
	// And it stays so, for both paths.
	if d := h.delta(t, func() { c.grpcBatch(ctx, 50); c.restBatch(ctx, 50) }); d["server1"] != 0 || d["server2"] != 100 {
		t.Errorf("after server1's record went, 50 gRPC and 50 REST calls landed %v, want all 100 on server2", d)
	}
	t.Logf("server1 removed from DNS: gRPC through HAProxy left it after %v, REST through the gateways after %v",
		haproxyRemove.Round(10*time.Millisecond), gatewayRemove.Round(10*time.Millisecond))
	t.Logf("calls: %d OK, %d failed %v; test took %v", c.ok, c.failed, c.errs, time.Since(began).Round(time.Millisecond))
	if c.failed != 0 {
		t.Errorf("%d calls failed while the records changed, want 0: %v", c.failed, c.errs)
	}
}

// TestHostsDiscoverGatewaysByDNS: HAProxy follows the gateways' records
// too: a gateway whose record goes gets no more calls, and one whose
// record comes back takes calls again, with no call failing.
func TestHostsDiscoverGatewaysByDNS(t *testing.T) {
	t.Parallel() // on hosts of its own: see onHosts
	h := start(t, onHosts("server1", "server2")).hosts
	c := h.calls(t)
	ctx := t.Context()
	restDelta := func() map[string]float64 {
		before := h.viaGateway(t)
		c.restBatch(ctx, 20)
		after := h.viaGateway(t)
		return map[string]float64{"gateway1": after["gateway1"] - before["gateway1"], "gateway2": after["gateway2"] - before["gateway2"]}
	}
	if d := restDelta(); d["gateway1"] == 0 || d["gateway2"] == 0 {
		t.Fatalf("with both gateways in DNS, 20 REST calls reached %v, want some on each", d)
	}

	h.setRecords(t, gatewayDNSName, []string{"gateway1"})
	removed := time.Now()
	if took, ok := poll.Until(30*time.Second, func() bool { return restDelta()["gateway2"] == 0 }); !ok {
		t.Fatalf("REST calls still reached gateway2 %v after its record went", took)
	}
	t.Logf("gateway2 removed from DNS: HAProxy stopped sending it calls after %v", time.Since(removed).Round(10*time.Millisecond))

	h.setRecords(t, gatewayDNSName, []string{"gateway1", "gateway2"})
	added := time.Now()
	if took, ok := poll.Until(30*time.Second, func() bool { return restDelta()["gateway2"] > 0 }); !ok {
		t.Fatalf("REST calls did not reach gateway2 %v after its record came back", took)
	}
	t.Logf("gateway2 back in DNS: it took calls again after %v", time.Since(added).Round(10*time.Millisecond))
	t.Logf("calls: %d OK, %d failed %v", c.ok, c.failed, c.errs)
	if c.failed != 0 {
		t.Errorf("%d REST calls failed while the gateways' records changed, want 0: %v", c.failed, c.errs)
	}
}
