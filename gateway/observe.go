package gateway

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/codename-gateway/codename-gateway/internal/telemetry"
)

// observe wraps h with one log line and one set of metrics per request:
// method, route, status and duration. Streams are logged when they end.
// The gRPC status of each call is in the gRPC client metrics registered
// beside these, and in the gRPC server's own log.
//
// The request's trace (the W3C traceparent HAProxy gave or kept) becomes
// the request context's span, so that its trace ID is on the log line and
// goes on to the gRPC server in the calls made for the request (through
// telemetry.DialOptions on the connection). A span of the gateway's own
// is started only when an exporter is configured (telemetry.Setup);
// otherwise the trace goes on as it came.
//
// A nil logger logs nothing; a nil registry counts into one served nowhere.
//
// Not promhttp's InstrumentHandler*: they label methods in lower case and
// any other method "unknown", where scrapers and the tests (here and in
// e2e) read method="GET" and "other"; and they build a label map per
// request, while the log line and span need the status recorded here anyway.
func observe(h http.Handler, logger *slog.Logger, reg *prometheus.Registry) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
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
	// Looked up once per label set, not once per request: a lookup by
	// label values builds a key and a slice every time.
	durations := make(map[string]prometheus.Observer, len(methodLabels))
	for _, m := range methodLabels {
		durations[m] = duration.WithLabelValues(m)
	}
	var counters sync.Map // requestKey -> prometheus.Counter
	count := func(method string, code int) {
		c, ok := counters.Load(requestKey{method, code})
		if !ok {
			c, _ = counters.LoadOrStore(requestKey{method, code}, requests.WithLabelValues(method, strconv.Itoa(code)))
		}
		c.(prometheus.Counter).Inc()
	}
	// The global tracer follows whatever provider telemetry.Setup installs,
	// even after this.
	tracer := otel.Tracer("github.com/codename-gateway/codename-gateway/gateway")

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		inFlight.Inc()
		rec := &statusRecorder{ResponseWriter: w}
		ctx := telemetry.Propagator.Extract(r.Context(), traceHeaders(r.Header))
		span := trace.SpanFromContext(ctx)
		if telemetry.Tracing() {
			// Named by the method alone (methodLabel's): a span name must
			// not grow with what clients send.
			ctx, span = tracer.Start(ctx, methodLabel(r.Method), trace.WithSpanKind(trace.SpanKindServer))
		}
		if ctx != r.Context() {
			r = r.WithContext(ctx)
		}
		defer func() {
			inFlight.Dec()
			elapsed := time.Since(start)
			code := rec.status
			if code == 0 {
				code = http.StatusOK
			}
			method := methodLabel(r.Method)
			count(method, code)
			durations[method].Observe(elapsed.Seconds())
			if span.IsRecording() {
				span.SetAttributes(attribute.String("http.request.method", method),
					attribute.String("url.path", r.URL.Path), attribute.Int("http.response.status_code", code))
				if code >= 500 {
					span.SetStatus(codes.Error, "")
				}
			}
			span.End()
			if r.URL.Path == "/healthz" {
				return // checked every few seconds; the metrics count them
			}
			if !logger.Enabled(ctx, slog.LevelInfo) {
				return
			}
			// Attrs, not key-value arguments: each argument would be
			// boxed into an interface, an allocation apiece.
			logger.LogAttrs(ctx, slog.LevelInfo, "request", slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.String("proto", r.Proto), slog.Int("status", code), slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
				slog.String("api_key", r.Header.Get(apiKeyIDHeader)), slog.String("trace_id", telemetry.TraceID(ctx)))
		}()
		h.ServeHTTP(rec, r)
	})
}

// traceHeaders is propagation.HeaderCarrier for the propagator's own
// keys, which it asks for in lower case: http.Header.Get would build
// their canonical form anew, an allocation per key and request.
type traceHeaders http.Header

func (h traceHeaders) Get(key string) string {
	switch key {
	case "traceparent":
		key = "Traceparent"
	case "tracestate":
		key = "Tracestate"
	case "baggage":
		key = "Baggage"
	default:
		return http.Header(h).Get(key)
	}
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (h traceHeaders) Set(key, value string) { http.Header(h).Set(key, value) }
func (h traceHeaders) Keys() []string        { return propagation.HeaderCarrier(h).Keys() }

// requestKey is a label set of the requests counter.
type requestKey struct {
	method string
	code   int
}

// methodLabels are the values methodLabel gives.
var methodLabels = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions, "other"}

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
