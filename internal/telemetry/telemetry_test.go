package telemetry

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/codename-gateway/codename-gateway/internal/grpctest"
	"github.com/codename-gateway/codename-gateway/internal/telemetry/otlptest"
)

func TestExporterFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{name: "nothing set", want: ""},
		{name: "an endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, want: "http/protobuf"},
		{name: "a traces endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, want: "http/protobuf"},
		{name: "otlp asked for", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, want: "http/protobuf"},
		{name: "over gRPC", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, want: "grpc"},
		{name: "traces protocol wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "x", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, want: "http/protobuf"},
		{name: "none", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, want: ""},
		{name: "SDK disabled", env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, want: ""},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "jaeger"}, wantErr: `OTEL_TRACES_EXPORTER="jaeger": want otlp or none`},
		{name: "unknown protocol", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, wantErr: `OTEL_EXPORTER_OTLP_PROTOCOL="http/json": want http/protobuf or grpc`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := exporterFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("exporterFromEnv = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// resetGlobals puts back what Setup changes, so that tests do not see each
// other's provider.
func resetGlobals(t *testing.T) {
	t.Cleanup(func() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		tracing.Store(false)
	})
}

// TestSetupWithNothingSet: no exporter, no SDK provider, nothing that could
// dial; ids still flow (TestIDsFlowWithoutExporter).
func TestSetupWithNothingSet(t *testing.T) {
	resetGlobals(t)
	shutdown, enabled, err := Setup(t.Context(), "test", func(string) string { return "" })
	if err != nil || enabled {
		t.Fatalf("Setup = enabled %v, %v; want not enabled, no error", enabled, err)
	}
	if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); ok {
		t.Error("an SDK TracerProvider is installed with nothing configured")
	}
	if Tracing() {
		t.Error("Tracing() = true with nothing configured")
	}
	if err := shutdown(t.Context()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// callThrough starts a gRPC server with ServerOptions and a client with
// DialOptions over an in-memory listener, makes one call with ctx, and
// returns the trace ID the server saw and the traceparent metadata it got.
func callThrough(t *testing.T, ctx context.Context) (traceID string, traceparent []string) {
	t.Helper()
	type seen struct {
		id string
		md []string
	}
	got := make(chan seen, 1)
	gs := grpc.NewServer(append(ServerOptions(), grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		got <- seen{TraceID(stream.Context()), metadata.ValueFromIncomingContext(stream.Context(), "traceparent")}
		if err := stream.RecvMsg(new(emptypb.Empty)); err != nil {
			return err
		}
		return stream.SendMsg(new(emptypb.Empty))
	}))...)
	conn := grpctest.Serve(t, gs, DialOptions()...)
	// A unary call and a stream alike.
	if err := conn.Invoke(ctx, "/test.Echo/Call", new(emptypb.Empty), new(emptypb.Empty)); err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	s := <-got
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, "/test.Echo/Stream")
	if err != nil {
		t.Fatalf("NewStream: %v", err)
	}
	if err := stream.SendMsg(new(emptypb.Empty)); err != nil {
		t.Fatalf("SendMsg: %v", err)
	}
	if err := stream.RecvMsg(new(emptypb.Empty)); err != nil {
		t.Fatalf("RecvMsg: %v", err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatalf("CloseSend: %v", err)
	}
	if err := stream.RecvMsg(new(emptypb.Empty)); err != io.EOF {
		t.Fatalf("RecvMsg at the end: %v, want EOF", err)
	}
	if s2 := <-got; s2.id != s.id {
		t.Errorf("the stream saw trace %q, the unary call %q", s2.id, s.id)
	}
	// The server ends a call's span after the client has its answer;
	// once stopped, it has ended them all.
	_ = conn.Close()
	gs.GracefulStop()
	return s.id, s.md
}

// withParent is a context whose span is the remote one of traceparent, as
// the gateway's request context is.
func withParent(t *testing.T, traceparent string) context.Context {
	t.Helper()
	ctx := Propagator.Extract(t.Context(), mapCarrier{"traceparent": traceparent})
	if !trace.SpanContextFromContext(ctx).IsValid() {
		t.Fatalf("traceparent %q did not parse", traceparent)
	}
	return ctx
}

type mapCarrier map[string]string

func (m mapCarrier) Get(k string) string { return m[k] }
func (m mapCarrier) Set(k, v string)     { m[k] = v }
func (m mapCarrier) Keys() []string      { return nil }

const (
	testTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	testParent  = "00-" + testTraceID + "-00f067aa0ba902b7-01"
)

// TestIDsFlowWithoutExporter: with nothing configured, a call made in the
// context of a trace carries it to the server unchanged, and a call made
// outside any trace carries none.
func TestIDsFlowWithoutExporter(t *testing.T) {
	resetGlobals(t)
	if _, _, err := Setup(t.Context(), "test", func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	id, md := callThrough(t, withParent(t, testParent))
	if id != testTraceID || len(md) != 1 || md[0] != testParent {
		t.Errorf("server saw trace %q and traceparent %q, want %q and [%q]", id, md, testTraceID, testParent)
	}
	id, md = callThrough(t, t.Context())
	if id != "" || len(md) != 0 {
		t.Errorf("without a trace the server saw trace %q and traceparent %q, want none", id, md)
	}
}

// TestExportsSpansWhenConfigured: with OTEL_TRACES_EXPORTER=otlp and an
// endpoint, over either protocol, the client and the server spans of a
// call reach the collector with the trace ID of the context the call was
// made in, under the service name given (OTEL_SERVICE_NAME would override
// it).
func TestExportsSpansWhenConfigured(t *testing.T) {
	t.Run("http/protobuf", func(t *testing.T) {
		rcv := otlptest.Start()
		t.Cleanup(rcv.Close)
		t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL())
		wantExported(t, rcv)
	})
	t.Run("grpc", func(t *testing.T) {
		rcv, err := otlptest.StartGRPC()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rcv.Close)
		t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", rcv.URL())
		t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
		wantExported(t, rcv)
	})
}

// wantExported sets telemetry up from the environment, makes a call and a
// stream in a trace, and checks that their spans reached rcv.
func wantExported(t *testing.T, rcv *otlptest.Receiver) {
	resetGlobals(t)
	shutdown, enabled, err := Setup(t.Context(), "codename-test", os.Getenv)
	if err != nil || !enabled {
		t.Fatalf("Setup = enabled %v, %v; want enabled", enabled, err)
	}
	id, md := callThrough(t, withParent(t, testParent))
	if id != testTraceID || len(md) != 1 || !strings.HasPrefix(md[0], "00-"+testTraceID+"-") {
		t.Errorf("server saw trace %q and traceparent %q, want trace %q", id, md, testTraceID)
	}
	if err := Shutdown(t.Context(), shutdown); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, s := range rcv.Spans() {
		if s.TraceID != testTraceID || s.Service != "codename-test" {
			t.Errorf("span %+v: want trace %s of service codename-test", s, testTraceID)
		}
		kinds[s.Kind]++
	}
	if kinds["SPAN_KIND_CLIENT"] != 2 || kinds["SPAN_KIND_SERVER"] != 2 {
		t.Errorf("exported spans by kind %v, want 2 client and 2 server (a call and a stream)", kinds)
	}
}

// TestNoneExportsNothing: OTEL_TRACES_EXPORTER=none beside an endpoint
// sends nothing to it.
func TestNoneExportsNothing(t *testing.T) {
	resetGlobals(t)
	rcv := otlptest.Start()
	t.Cleanup(rcv.Close)
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL())
	shutdown, enabled, err := Setup(t.Context(), "codename-test", os.Getenv)
	if err != nil || enabled {
		t.Fatalf("Setup = enabled %v, %v; want not enabled", enabled, err)
	}
	callThrough(t, withParent(t, testParent))
	if err := Shutdown(t.Context(), shutdown); err != nil {
		t.Fatal(err)
	}
	if n := rcv.Requests(); n != 0 {
		t.Errorf("the collector got %d requests, want none", n)
	}
}

// TestShutdownBounded: a collector that never answers holds the exit no
// longer than ShutdownTimeout, and the error says spans were lost.
func TestShutdownBounded(t *testing.T) {
	done := make(chan struct{})
	slow := func(ctx context.Context) error {
		defer close(done)
		<-ctx.Done()
		return ctx.Err()
	}
	start := time.Now()
	err := Shutdown(context.Background(), slow)
	<-done
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "export the last spans: ") {
		t.Errorf("Shutdown = %v, want export the last spans: context deadline exceeded", err)
	}
	if d := time.Since(start); d < ShutdownTimeout || d > ShutdownTimeout+2*time.Second {
		t.Errorf("Shutdown took %v, want about %v", d, ShutdownTimeout)
	}
}
