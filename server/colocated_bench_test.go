package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/codename-gateway/codename-gateway/gateway"
)

// BenchmarkRESTUnary is one REST GET /v1/codename through the gateway's
// whole handler (request log, metrics) and on to the real server (its
// interceptors, its call log), with the gateway in process (co-located)
// or calling the server over a loopback TCP connection, as a separate
// gateway process does. Both sides run in this one process, so the
// figures are the Go CPU of both, minus HAProxy and the REST sockets;
// cpu-ns/op counts every goroutine's, the benchmark's own loop included.
func BenchmarkRESTUnary(b *testing.B) {
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, mode := range []string{"colocated", "separate"} {
		b.Run(mode, func(b *testing.B) {
			s := newServer(Config{Logger: discard})
			var conn grpc.ClientConnInterface
			if mode == "colocated" {
				c, err := s.inProcessConn()
				if err != nil {
					b.Fatal(err)
				}
				go func() { _ = s.gs.Serve(c.lis) }()
				b.Cleanup(func() { c.Close() })
				conn = c
			} else {
				lis := listenTCP(b)
				go func() { _ = s.gs.Serve(lis) }()
				conn = dialTCP(b, lis.Addr().String())
			}
			b.Cleanup(s.gs.Stop)
			h, err := gateway.New(b.Context(), conn, gateway.Options{Logger: discard, Metrics: prometheus.NewRegistry()})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu := processCPU(b)
			for b.Loop() {
				r := httptest.NewRequestWithContext(b.Context(), http.MethodGet, "/v1/codename?category=science", nil)
				r.Header.Set("X-Api-Key-Id", "sha256:0123456789ab")
				r.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the CPU time this process has used, user and system: on a
// shared machine, a steadier measure of the work per call than the time
// it took.
func processCPU(b *testing.B) time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		b.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
