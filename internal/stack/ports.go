package stack

import (
	"context"
	"io"
	"net"
)

// StartOnFreePorts is Start with every address in cfg set to a free
// loopback port, for tests and benchmarks; Config tells which ports they
// are. A port found free can be taken by another program's connection
// before the stack binds it, so a start that fails on a taken port is tried
// again on new ports, up to three times.
func StartOnFreePorts(ctx context.Context, cfg Config, replicas int) (*Stack, error) {
	for attempt := 1; ; attempt++ {
		addrs := make([]string, 3+4*replicas)
		for i := range addrs {
			a, err := FreeAddr()
			if err != nil {
				return nil, err
			}
			addrs[i] = a
		}
		cfg.HTTPSAddr, cfg.HTTPAddr, cfg.StatsAddr = addrs[0], addrs[1], addrs[2]
		rest := addrs[3:]
		cfg.GRPCAddrs, cfg.GatewayAddrs = rest[:replicas], rest[replicas:2*replicas]
		cfg.GRPCAdminAddrs, cfg.GatewayAdminAddrs = rest[2*replicas:3*replicas], rest[3*replicas:]
		out := cfg.Output
		if out == nil {
			out = io.Discard
		}
		w := &noticeWriter{w: out, needle: portTaken}
		try := cfg
		try.Output = w
		s, err := Start(ctx, try)
		if err == nil || attempt == 3 || w.seen.Load() == 0 {
			return s, err
		}
	}
}

// portTaken is in what a child says when its port is taken: HAProxy
// says "Address", Go "address".
var portTaken = []byte("ddress already in use")

// FreeAddr returns a loopback address with a port that was free a moment
// ago, for children that must be told their address before they start.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// dialable turns a listen address such as ":8080" into one a client can
// dial on this machine.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || host == "0.0.0.0" || host == "::" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}
