package server

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// healthHandler is all that HTTP/1.1 clients of the gRPC port get: the
// health that HAProxy checks. Anything more there would be reachable by
// whoever HAProxy lets through, under any spelling of its path.
func healthHandler(hs *health.Server) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz(hs))
	return mux
}

// adminHandler serves the admin listener, which only operators reach: the
// metrics Prometheus scrapes, and the same health as the gRPC port for
// whoever watches the process from inside.
func adminHandler(hs *health.Server, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz(hs))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// healthz answers 200 while the server is SERVING and 503 once it drains.
func healthz(hs *health.Server) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res, err := hs.Check(r.Context(), &healthpb.HealthCheckRequest{})
		if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			http.Error(w, "NOT_SERVING", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("SERVING\n"))
	}
}

// serveHTTP serves h on lis, for the health endpoint of the gRPC port or
// the admin listener, on a goroutine that wg waits for; the caller closes
// the returned server. What ends it otherwise is logged.
func (s *grpcServer) serveHTTP(wg *sync.WaitGroup, what string, lis net.Listener, h http.Handler) *http.Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	wg.Go(func() {
		if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.logger.Warn(what+" stopped", "err", err)
		}
	})
	return srv
}
