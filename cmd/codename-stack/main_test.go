package main

import (
	"slices"
	"strings"
	"testing"
)

// TestConsecutive uses addresses only: nothing listens on these ports.
func TestSpaced(t *testing.T) {
	tests := []struct {
		name    string
		addr    string
		n       int
		want    []string
		wantErr bool
	}{
		{name: "one replica", addr: "127.0.0.1:7100", n: 1, want: []string{"127.0.0.1:7100"}},
		{name: "four replicas", addr: "127.0.0.1:7100", n: 4,
			want: []string{"127.0.0.1:7100", "127.0.0.1:7110", "127.0.0.1:7120", "127.0.0.1:7130"}},
		{name: "host name kept", addr: "localhost:7201", n: 2, want: []string{"localhost:7201", "localhost:7211"}},
		{name: "IPv6 host kept in brackets", addr: "[::1]:7100", n: 2, want: []string{"[::1]:7100", "[::1]:7110"}},
		{name: "empty host kept", addr: ":7200", n: 3, want: []string{":7200", ":7210", ":7220"}},
		{name: "no replicas", addr: "127.0.0.1:7100", n: 0, wantErr: true},
		{name: "negative replicas", addr: "127.0.0.1:7100", n: -1, wantErr: true},
		{name: "more replicas than HAProxy knows", addr: "127.0.0.1:7100", n: 5, wantErr: true},
		{name: "no port", addr: "127.0.0.1", n: 1, wantErr: true},
		{name: "port by name", addr: "127.0.0.1:http", n: 1, wantErr: true},
		{name: "unclosed IPv6 bracket", addr: "[::1:7100", n: 1, wantErr: true},
		{name: "empty", addr: "", n: 1, wantErr: true},
		{name: "ports past 65535", addr: "127.0.0.1:65530", n: 2, wantErr: true},
		{name: "port zero", addr: "127.0.0.1:0", n: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := spaced(tt.addr, tt.n)
			if tt.wantErr {
				if err == nil {
					t.Errorf("spaced(%q, %d) = %q, want an error", tt.addr, tt.n, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("spaced(%q, %d): %v", tt.addr, tt.n, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("spaced(%q, %d) = %q, want %q", tt.addr, tt.n, got, tt.want)
			}
		})
	}
}

// TestDefaultReplicasDoNotClash: with the default addresses, every replica
// count the stack accepts gives each listener a port of its own. Replica
// 2's gRPC port was once replica 1's admin port (9091), so that
// CODENAME_REPLICAS=2 failed on a taken port.
func TestDefaultReplicasDoNotClash(t *testing.T) {
	for n := 1; n <= 4; n++ {
		l, err := replicaListeners(defaultListeners, n)
		if err != nil {
			t.Fatalf("%d replicas on the default addresses: %v", n, err)
		}
		seen := map[string]bool{}
		for _, addrs := range [][]string{l.grpc, l.gateway, l.grpcAdmin, l.gatewayAdmin} {
			if len(addrs) != n {
				t.Fatalf("%d replicas: got %q", n, addrs)
			}
			for _, a := range addrs {
				if seen[a] {
					t.Errorf("%d replicas: %s given twice", n, a)
				}
				seen[a] = true
			}
		}
	}
}

// TestReplicaListenersRefuseClashes: addresses that an operator sets so
// that two listeners meet are an error naming both, before anything starts.
func TestReplicaListenersRefuseClashes(t *testing.T) {
	l := defaultListeners
	l.grpcAdmin = "127.0.0.1:9100" // replica 2's gRPC port
	_, err := replicaListeners(l, 2)
	if err == nil {
		t.Fatal("replica 2's gRPC address on replica 1's admin address: no error")
	}
	for _, want := range []string{"127.0.0.1:9100", "gRPC server 2", "gRPC admin 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}
