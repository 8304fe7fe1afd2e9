package stack

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Network is a private network of hosts on this machine, for tests that
// need the system's parts on hosts with addresses of their own: one network
// namespace per host, each joined by a veth pair to a bridge in this
// (the root) namespace. The bridge has the first address of the network's
// /24, so that this process reaches every host directly; the hosts have
// the next ones, in the order they were named. Traffic never leaves the
// machine. Making one needs root and iproute2.
type Network struct {
	// Prefix is the network's first three octets, such as "10.77.23".
	Prefix string
	// Bridge is the bridge's interface name; its address is Prefix.1.
	Bridge string
	hosts  []Host
	// resolvers lists the /etc/netns folders made by SetResolver.
	resolvers []string
	// impairments lists the links Impair relays.
	impairments []*Impairment
}

// Host is one host of a Network.
type Host struct {
	// Name is the name the host was asked for, such as "edge".
	Name string
	// Netns is its network namespace, for `ip netns exec` and
	// Config.Netns.
	Netns string
	// Addr is its IPv4 address.
	Addr string
}

// NewNetwork makes a network with one host per name. Its interfaces and
// namespaces carry a random suffix, and its /24 is one of 10.77.1.0 to
// 10.77.254.0 that no interface of this machine uses yet, so that
// networks made at the same time do not clash. On error, whatever was made
// is removed again.
func NewNetwork(names ...string) (*Network, error) {
	if len(names) == 0 || len(names) > 200 {
		return nil, fmt.Errorf("want 1 to 200 hosts, got %d", len(names))
	}
	suffix, err := randomHex(3)
	if err != nil {
		return nil, err
	}
	// A /24 counts as taken once its bridge has its address: until then,
	// another network made at the same time (parallel tests) could pick it.
	prefixes.Lock()
	prefix, err := freePrefix()
	if err != nil {
		prefixes.Unlock()
		return nil, err
	}
	n := &Network{Prefix: prefix, Bridge: "cgbr" + suffix}
	fail := func(err error) (*Network, error) {
		return nil, errors.Join(err, n.Close())
	}
	err = ipCmds(
		[]string{"link", "add", n.Bridge, "type", "bridge"},
		[]string{"addr", "add", prefix + ".1/24", "dev", n.Bridge},
		[]string{"link", "set", n.Bridge, "up"},
	)
	prefixes.Unlock()
	if err != nil {
		return fail(err)
	}
	for i, name := range names {
		h := Host{Name: name, Netns: fmt.Sprintf("cg%s-%s", suffix, name), Addr: fmt.Sprintf("%s.%d", prefix, i+2)}
		// Interface names: at most 15 bytes.
		outside, inside := fmt.Sprintf("cg%s-%d", suffix, i), fmt.Sprintf("cg%sp%d", suffix, i)
		if err := ipCmds([]string{"netns", "add", h.Netns}); err != nil {
			return fail(err)
		}
		n.hosts = append(n.hosts, h)
		if err := ipCmds(
			[]string{"link", "add", outside, "type", "veth", "peer", "name", inside},
			[]string{"link", "set", outside, "master", n.Bridge, "up"},
			[]string{"link", "set", inside, "netns", h.Netns},
			[]string{"-n", h.Netns, "link", "set", inside, "name", "eth0"},
			[]string{"-n", h.Netns, "addr", "add", h.Addr + "/24", "dev", "eth0"},
			[]string{"-n", h.Netns, "link", "set", "eth0", "up"},
			[]string{"-n", h.Netns, "link", "set", "lo", "up"},
		); err != nil {
			return fail(err)
		}
	}
	return n, nil
}

// Host returns the host called name; it panics if there is none, as a
// test's typo should.
func (n *Network) Host(name string) Host {
	for _, h := range n.hosts {
		if h.Name == name {
			return h
		}
	}
	panic("no host called " + name)
}

// SetResolver makes the host called name resolve names through the DNS
// server at addr: `ip netns exec` bind-mounts /etc/netns/NS/resolv.conf
// over /etc/resolv.conf for what it starts (after this call).
func (n *Network) SetResolver(name, addr string) error {
	dir := filepath.Join("/etc/netns", n.Host(name).Netns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	n.resolvers = append(n.resolvers, dir)
	return os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver "+addr+"\noptions timeout:1 attempts:2\n"), 0o644)
}

// Close ends the impairments, and removes the namespaces (and with them
// the veth pairs), the bridge and the resolver files. It is safe to call more than once.
func (n *Network) Close() error {
	var errs []error
	for _, im := range n.impairments {
		if err := im.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	n.impairments = nil
	for _, h := range n.hosts {
		if err := ipCmds([]string{"netns", "del", h.Netns}); err != nil {
			errs = append(errs, err)
		}
	}
	n.hosts = nil
	if n.Bridge != "" {
		if _, err := net.InterfaceByName(n.Bridge); err == nil {
			if err := ipCmds([]string{"link", "del", n.Bridge}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, dir := range n.resolvers {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	n.resolvers = nil
	return errors.Join(errs...)
}

// ipCmds runs `ip` once per argument list, stopping at the first failure.
func ipCmds(cmds ...[]string) error {
	for _, args := range cmds {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// prefixes makes the choice of a free /24 and its taking one step.
var prefixes sync.Mutex

// freePrefix picks a random 10.77.X that no interface address here is in.
func freePrefix() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for range 20 {
		x, err := rand.Int(rand.Reader, big.NewInt(254))
		if err != nil {
			return "", err
		}
		prefix := fmt.Sprintf("10.77.%d", x.Int64()+1)
		_, subnet, _ := net.ParseCIDR(prefix + ".0/24")
		taken := false
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && subnet.Contains(ipn.IP) {
				taken = true
			}
		}
		if !taken {
			return prefix, nil
		}
	}
	return "", errors.New("no free 10.77.X.0/24 found in 20 tries")
}

func randomHex(bytes int) (string, error) {
	b := make([]byte, bytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
