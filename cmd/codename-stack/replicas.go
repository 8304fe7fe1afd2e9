package main

import (
	"fmt"
	"net"
	"strconv"

	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// replicaStride is how far apart the ports of one listener's replicas are.
// The defaults put a process's admin port right after its main port (9090
// and 9091, 8081 and 8082, as the binaries' own defaults do); a stride of
// one would give replica 2 the first replica's admin port.
const replicaStride = 10

// firstAddrs holds the first replica's listen addresses.
type firstAddrs struct{ grpc, gateway, grpcAdmin, gatewayAdmin string }

// defaultListeners are the run command's defaults, the binaries' own.
var defaultListeners = firstAddrs{
	grpc:         "127.0.0.1:9090",
	gateway:      "127.0.0.1:8081",
	grpcAdmin:    "127.0.0.1:9091",
	gatewayAdmin: "127.0.0.1:8082",
}

// listeners holds every replica's listen addresses, one per replica.
type listeners struct{ grpc, gateway, grpcAdmin, gatewayAdmin []string }

// replicaListeners spreads n replicas from the first one's addresses, and
// refuses addresses that meet: a clash would otherwise show as one process
// failing on a taken port after the others started.
func replicaListeners(first firstAddrs, n int) (listeners, error) {
	var l listeners
	lists := []struct {
		name  string
		addr  string
		addrs *[]string
	}{
		{"gRPC server", first.grpc, &l.grpc},
		{"gateway", first.gateway, &l.gateway},
		{"gRPC admin", first.grpcAdmin, &l.grpcAdmin},
		{"gateway admin", first.gatewayAdmin, &l.gatewayAdmin},
	}
	owner := map[string]string{}
	for _, list := range lists {
		addrs, err := spaced(list.addr, n)
		if err != nil {
			return listeners{}, fmt.Errorf("%s: %w", list.name, err)
		}
		for i, a := range addrs {
			who := fmt.Sprintf("%s %d", list.name, i+1)
			if other, ok := owner[a]; ok {
				return listeners{}, fmt.Errorf("%s and %s would both listen on %s: give one of them another address", other, who, a)
			}
			owner[a] = who
		}
		*list.addrs = addrs
	}
	return l, nil
}

// spaced returns n addresses: addr, then the same host with ports
// replicaStride apart.
func spaced(addr string, n int) ([]string, error) {
	if n < 1 || n > stack.MaxReplicas {
		return nil, fmt.Errorf("replicas: want 1 to %d, got %d", stack.MaxReplicas, n)
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	last := port + (n-1)*replicaStride
	if port < 1 || last > 65535 {
		return nil, fmt.Errorf("%s: %d replicas need ports %d to %d", addr, n, port, last)
	}
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = net.JoinHostPort(host, strconv.Itoa(port+i*replicaStride))
	}
	return addrs, nil
}
