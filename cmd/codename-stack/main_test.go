package main

import (
	"slices"
	"testing"
)

// TestConsecutive uses addresses only: nothing listens on these ports.
func TestConsecutive(t *testing.T) {
	tests := []struct {
		name    string
		addr    string
		n       int
		want    []string
		wantErr bool
	}{
		{name: "one replica", addr: "127.0.0.1:7100", n: 1, want: []string{"127.0.0.1:7100"}},
		{name: "four replicas", addr: "127.0.0.1:7100", n: 4,
			want: []string{"127.0.0.1:7100", "127.0.0.1:7101", "127.0.0.1:7102", "127.0.0.1:7103"}},
		{name: "host name kept", addr: "localhost:7201", n: 2, want: []string{"localhost:7201", "localhost:7202"}},
		{name: "IPv6 host kept in brackets", addr: "[::1]:7100", n: 2, want: []string{"[::1]:7100", "[::1]:7101"}},
		{name: "empty host kept", addr: ":7200", n: 3, want: []string{":7200", ":7201", ":7202"}},
		{name: "no replicas", addr: "127.0.0.1:7100", n: 0, wantErr: true},
		{name: "negative replicas", addr: "127.0.0.1:7100", n: -1, wantErr: true},
		{name: "more replicas than HAProxy knows", addr: "127.0.0.1:7100", n: 5, wantErr: true},
		{name: "no port", addr: "127.0.0.1", n: 1, wantErr: true},
		{name: "port by name", addr: "127.0.0.1:http", n: 1, wantErr: true},
		{name: "unclosed IPv6 bracket", addr: "[::1:7100", n: 1, wantErr: true},
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
