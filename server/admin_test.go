package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/promtest"
)

// TestAdminEndpoints checks what the admin listener serves, over plain
// HTTP/1.1.
func TestAdminEndpoints(t *testing.T) {
	s := startTCPServer(t, Config{MetricsListener: listenTCP(t)})
	tests := []struct {
		name     string
		method   string
		path     string
		wantCode int
		wantBody string // a prefix of the body
	}{
		{name: "metrics", path: "/metrics", wantCode: http.StatusOK, wantBody: "# HELP "},
		{name: "healthz", path: "/healthz", wantCode: http.StatusOK, wantBody: "SERVING\n"},
		{name: "unknown path", path: "/nope", wantCode: http.StatusNotFound, wantBody: "404 page not found"},
		{name: "POST metrics", method: http.MethodPost, path: "/metrics", wantCode: http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req, err := http.NewRequestWithContext(t.Context(), method, "http://"+s.adminAddr+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, tt.path, err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantCode {
				t.Errorf("%s %s = %d, want %d", method, tt.path, resp.StatusCode, tt.wantCode)
			}
			if !strings.HasPrefix(string(body), tt.wantBody) {
				t.Errorf("%s %s body = %.100q, want it to start with %q", method, tt.path, body, tt.wantBody)
			}
		})
	}
}

// TestAdminDuringDrain checks the admin listener through a shutdown: its
// /healthz turns 503 with the gRPC port's, the metrics can be scraped for
// the whole drain, and the listener is closed once Serve returns.
func TestAdminDuringDrain(t *testing.T) {
	const drainDelay = 300 * time.Millisecond
	s := startTCPServer(t, Config{DrainDelay: drainDelay, MetricsListener: listenTCP(t)})
	if code, _ := s.mustGetAdmin(t, "/healthz"); code != http.StatusOK {
		t.Fatalf("admin healthz before shutdown = %d, want 200", code)
	}
	go s.shutdown()
	eventually(t, "admin healthz to turn 503", func() (bool, string) {
		code, body := s.mustGetAdmin(t, "/healthz")
		return code == http.StatusServiceUnavailable, fmt.Sprintf("%d %q", code, body)
	})
	if code, _ := s.mustGetAdmin(t, "/metrics"); code != http.StatusOK {
		t.Errorf("GET /metrics during the drain = %d, want 200", code)
	}
	if _, err := s.shutdown(); err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	conn, err := net.DialTimeout("tcp", s.adminAddr, waitTimeout)
	if err == nil {
		_ = conn.Close()
		t.Fatal("admin listener still accepts connections after Serve returned")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial admin listener after Serve returned: %v, want connection refused", err)
	}
}

// TestAdminMetrics checks the Prometheus metrics served on the admin
// listener.
func TestAdminMetrics(t *testing.T) {
	s := startTCPServer(t, Config{StreamInterval: time.Hour, MetricsListener: listenTCP(t)})
	client := s.dialGRPC(t)
	if _, err := client.GetCodename(t.Context(), &codenamev1.NameRequest{}); err != nil {
		t.Fatalf("GetCodename: %v", err)
	}

	metric := func(name string, labels map[string]string) (float64, string) {
		t.Helper()
		code, body := s.mustGetAdmin(t, "/metrics")
		if code != http.StatusOK {
			t.Fatalf("GET /metrics = %d, want 200", code)
		}
		v, ok := promtest.Sum(body, name, labels)
		if !ok {
			return -1, fmt.Sprintf("no %s%v in:\n%s", name, labels, body)
		}
		return v, fmt.Sprintf("%s%v = %v", name, labels, v)
	}
	unary := map[string]string{"grpc_method": "GetCodename", "grpc_service": serviceName, "grpc_type": "unary"}
	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{name: "handled", metric: "grpc_server_handled_total",
			labels: map[string]string{"grpc_method": "GetCodename", "grpc_code": "OK"}, want: 1},
		{name: "handling time", metric: "grpc_server_handling_seconds_bucket",
			labels: map[string]string{"grpc_method": "GetCodename", "le": "+Inf"}, want: 1},
		{name: "started", metric: "grpc_server_started_total", labels: unary, want: 1},
		{name: "no stream open", metric: "codename_open_streams", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, desc := metric(tt.metric, tt.labels); got != tt.want {
				t.Errorf("got %s, want %v", desc, tt.want)
			}
		})
	}

	ctx, cancel := context.WithCancel(t.Context())
	stream := openStream(t, ctx, client, "space")
	recvCategory(t, stream)
	eventually(t, "codename_open_streams to be 1 while a stream is open", func() (bool, string) {
		got, desc := metric("codename_open_streams", nil)
		return got == 1, desc
	})
	cancel()
	eventually(t, "codename_open_streams to be 0 once the stream ended", func() (bool, string) {
		got, desc := metric("codename_open_streams", nil)
		return got == 0, desc
	})
}
