package server

import (
	"net/http"

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
