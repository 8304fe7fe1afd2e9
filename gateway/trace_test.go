package gateway_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/gateway"
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
	received := make(chan metadata.MD, 1)
	gs := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		md, _ := metadata.FromIncomingContext(stream.Context())
		received <- md
		if err := stream.RecvMsg(new(codenamev1.NameRequest)); err != nil {
			return err
		}
		return stream.SendMsg(&codenamev1.NameResult{Name: "Fake Name"})
	}))
	lis := bufconn.Listen(1 << 20)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	t.Cleanup(func() {
		gs.Stop()
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("Serve: %v", err)
		}
	})
	conn, err := grpc.NewClient("passthrough:///bufnet", append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, telemetry.DialOptions()...)...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	logs := &logRecorder{}
	h, err := gateway.New(t.Context(), conn, gateway.Options{Logger: slog.New(logs), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}

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
			_ = logs.take()
			rec := serve(t, h, "GET", "/v1/codename?category=space", "", tt.header)
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d, want 200; body:\n%s", rec.Code, rec.Body)
			}
			var md metadata.MD
			select {
			case md = <-received:
			default:
				t.Fatal("the fake server got no call")
			}
			if got := md.Get("traceparent"); strings.Join(got, ",") != strings.Join(tt.wantParent, ",") {
				t.Errorf("traceparent metadata = %q, want %q", got, tt.wantParent)
			}
			recs := logs.take()
			if len(recs) != 1 {
				t.Fatalf("got %d log lines, want 1", len(recs))
			}
			if got := attrs(recs[0])["trace_id"].String(); got != tt.wantTrace {
				t.Errorf("trace_id = %q, want %q", got, tt.wantTrace)
			}
		})
	}
}
