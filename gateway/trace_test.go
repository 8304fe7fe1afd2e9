package gateway_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/codename-gateway/codename-gateway/gateway"
	"github.com/codename-gateway/codename-gateway/internal/logtest"
	"github.com/codename-gateway/codename-gateway/internal/telemetry"
)

// TestTraceReachesLogAndServer checks that the trace of a request's
// traceparent is on the gateway's log line and goes on to the gRPC server
// as the traceparent of the call, through a connection dialed with
// telemetry.DialOptions as the gateway's command dials it (with no
// exporter configured); and that a client cannot slip a traceparent of its
// own past it as Grpc-Metadata-*.
func TestTraceReachesLogAndServer(t *testing.T) {
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	const parent = "00-" + traceID + "-00f067aa0ba902b7-01"
	calls := &metadataRecorder{}
	logs := new(logtest.Recorder)
	h := fakeGateway(t, calls.server(), gateway.Options{Logger: slog.New(logs), Metrics: prometheus.NewRegistry()},
		telemetry.DialOptions()...)

	tests := []struct {
		name       string
		header     http.Header
		wantTrace  string   // on the log line
		wantParent []string // traceparent metadata the server gets
	}{
		{name: "traceparent", header: http.Header{"Traceparent": {parent}}, wantTrace: traceID, wantParent: []string{parent}},
		{name: "none"},
		{name: "invalid", header: http.Header{"Traceparent": {"00-" + traceID + "-0000000000000000-01"}}},
		{name: "as gRPC metadata", header: http.Header{"Grpc-Metadata-Traceparent": {parent}}},
		{name: "as gRPC metadata beside a traceparent", header: http.Header{
			"Traceparent":               {parent},
			"Grpc-Metadata-Traceparent": {"00-11111111111111111111111111111111-1111111111111111-01"},
		}, wantTrace: traceID, wantParent: []string{parent}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_ = logs.Take()
			rec := serve(t, h, "GET", "/v1/codename?category=space", "", tt.header)
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200; body:\n%s", rec.Code, rec.Body)
			}
			if got := calls.last(t).Get("traceparent"); strings.Join(got, ",") != strings.Join(tt.wantParent, ",") {
				t.Errorf("traceparent metadata = %q, want %q", got, tt.wantParent)
			}
			recs := logs.Take()
			if len(recs) != 1 {
				t.Fatalf("got %d log lines, want 1", len(recs))
			}
			if got := logtest.Attrs(recs[0])["trace_id"].String(); got != tt.wantTrace {
				t.Errorf("trace_id = %q, want %q", got, tt.wantTrace)
			}
		})
	}
}
