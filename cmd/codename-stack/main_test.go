package main

import (
	"slices"
	"testing"
)

func TestConsecutive(t *testing.T) {
	tests := []struct {
		name    string
		addr    string
		n       int
		want    []string
		wantErr bool
	}{
		{name: "one replica", addr: "127.0.0.1:9090", n: 1, want: []string{"127.0.0.1:9090"}},
		{name: "four replicas", addr: "127.0.0.1:9090", n: 4,
			want: []string{"127.0.0.1:9090", "127.0.0.1:9091", "127.0.0.1:9092", "127.0.0.1:9093"}},
		{name: "host name kept", addr: "localhost:8081", n: 2, want: []string{"localhost:8081", "localhost:8082"}},
		{name: "IPv6 host kept in brackets", addr: "[::1]:9090", n: 2, want: []string{"[::1]:9090", "[::1]:9091"}},
		{name: "empty host kept", addr: ":8080", n: 3, want: []string{":8080", ":8081", ":8082"}},
		{name: "no replicas", addr: "127.0.0.1:9090", n: 0, wantErr: true},
		{name: "negative replicas", addr: "127.0.0.1:9090", n: -1, wantErr: true},
		{name: "more replicas than HAProxy knows", addr: "127.0.0.1:9090", n: 5, wantErr: true},
		{name: "no port", addr: "127.0.0.1", n: 1, wantErr: true},
		{name: "port by name", addr: "127.0.0.1:http", n: 1, wantErr: true},
		{name: "unclosed IPv6 bracket", addr: "[::1:9090", n: 1, wantErr: true},
		{name: "empty", addr: "", n: 1, wantErr: true},
		{name: "ports past 65535", addr: "127.0.0.1:65535", n: 2, wantErr: true},
		{name: "port zero", addr: "127.0.0.1:0", n: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := consecutive(tt.addr, tt.n)
			if tt.wantErr {
				if err == nil {
					t.Errorf("consecutive(%q, %d) = %q, want an error", tt.addr, tt.n, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("consecutive(%q, %d): %v", tt.addr, tt.n, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("consecutive(%q, %d) = %q, want %q", tt.addr, tt.n, got, tt.want)
			}
		})
	}
}
