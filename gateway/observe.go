package gateway

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// observe wraps h with one log line and one set of metrics per request:
// method, route, status and duration. Streams are logged when they end.
// The gRPC status of each call is in the gRPC client metrics registered
// beside these, and in the gRPC server's own log.
func observe(h http.Handler, logger *slog.Logger, reg prometheus.Registerer) http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "codename_gateway_http_requests_total",
		Help: "HTTP requests the gateway answered, by method and status code.",
	}, []string{"method", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "codename_gateway_http_request_duration_seconds",
		Help:    "Time to answer an HTTP request; a stream counts until it ends.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
	}, []string{"method"})
	inFlight := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "codename_gateway_http_requests_in_flight",
		Help: "HTTP requests being answered now, open streams included.",
	})
	reg.MustRegister(requests, duration, inFlight)

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		inFlight.Inc()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			inFlight.Dec()
			elapsed := time.Since(start)
			code := rec.status
			if code == 0 {
				code = http.StatusOK
			}
			method := methodLabel(r.Method)
			requests.WithLabelValues(method, strconv.Itoa(code)).Inc()
			duration.WithLabelValues(method).Observe(elapsed.Seconds())
			if r.URL.Path == "/healthz" {
				return // checked every few seconds; the metrics count them
			}
			logger.Info("request", "method", r.Method, "path", r.URL.Path, "proto", r.Proto,
				"status", code, "duration_ms", float64(elapsed.Microseconds())/1000,
				"api_key", r.Header.Get(apiKeyIDHeader))
		}()
		h.ServeHTTP(rec, r)
	})
}

// methodLabel maps an HTTP method to one of a fixed set of label values.
// Any token is a valid method, and each label value is a series Prometheus
// keeps for as long as the process lives: a client inventing methods would
// otherwise grow the gateway's memory and every scrape without bound.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return method
	}
	return "other"
}

// statusRecorder notes the status code written through it. Unwrap lets
// http.ResponseController and the WebSocket library reach the flushing,
// full-duplex and hijacking methods of the writer underneath.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
