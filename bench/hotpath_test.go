package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/gateway"
	"github.com/codename-gateway/codename-gateway/server"
)

// The hot paths of one REST or gRPC call, in process, for
// `go test -bench . -benchmem ./bench` and for profiles
// (`-cpuprofile`, `-memprofile`): the processes themselves serve no pprof.
// Codename generation has its own benchmark in server/codename.

// gatewayMarshaler is the JSON marshaler the gateway registers for every
// content type (gateway.New): field names as in the proto's JSON mapping,
// unset fields written out, unknown fields refused.
var gatewayMarshaler = &runtime.JSONPb{
	MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
	UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
}

// BenchmarkMarshalNameResult marshals the answer of GetCodename the way
// the gateway does, beside encoding/json on a plain struct for scale: the
// least a JSON answer of this shape can cost in Go.
func BenchmarkMarshalNameResult(b *testing.B) {
	res := &codenamev1.NameResult{Name: "Curious Curie"}
	b.Run("gateway JSONPb", func(b *testing.B) {
		b.ReportAllocs()
		stop := measureCPU(b)
		for b.Loop() {
			if _, err := gatewayMarshaler.Marshal(res); err != nil {
				b.Fatal(err)
			}
		}
		stop()
	})
	b.Run("encoding/json struct", func(b *testing.B) {
		b.ReportAllocs()
		v := struct {
			Name string `json:"name"`
		}{res.GetName()}
		stop := measureCPU(b)
		for b.Loop() {
			if _, err := json.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
		stop()
	})
}

// BenchmarkGetCodename is one gRPC GetCodename round trip over bufconn to
// the real server (interceptors, metrics, one log line per call), with and
// without the log line written: the servers in production write it.
func BenchmarkGetCodename(b *testing.B) {
	for _, tt := range []struct {
		name   string
		logger *slog.Logger
	}{
		{"logged", slog.New(slog.NewTextHandler(io.Discard, nil))},
		{"not logged", nil},
	} {
		b.Run(tt.name, func(b *testing.B) {
			conn := startServer(b, tt.logger)
			client := codenamev1.NewCodenameCreatorClient(conn)
			req := &codenamev1.NameRequest{Category: "science"}
			b.ReportAllocs()
			stop := measureCPU(b)
			for b.Loop() {
				if _, err := client.GetCodename(b.Context(), req); err != nil {
					b.Fatal(err)
				}
			}
			stop()
		})
	}
}

// BenchmarkGatewayGetCodename is one GetCodename through the gateway's
// whole handler (request log and metrics included) and its gRPC hop over
// bufconn to the real server: what the Go processes do for one call, minus
// the sockets and HTTP/2 framing of the real ones. The REST call (GET
// /v1/codename) goes through grpc-gateway's mux; gRPC-Web and Connect JSON
// (POST on the gRPC path, as the benchmark's h2load sends them) through
// the connect-go handlers.
func BenchmarkGatewayGetCodename(b *testing.B) {
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	conn := startServer(b, discard)
	h, err := gateway.New(b.Context(), conn, gateway.Options{Logger: discard, Metrics: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	req := &codenamev1.NameRequest{Category: "science"}
	dir := b.TempDir()
	grpcBody, err := writeGRPCRequest(dir, req)
	if err != nil {
		b.Fatal(err)
	}
	jsonBody, err := writeConnectRequest(dir, req)
	if err != nil {
		b.Fatal(err)
	}
	const path = "/codename.v1.CodenameCreator/GetCodename"
	for _, tt := range []struct {
		name, method, target string
		headers              []string
		bodyFile             string
		read                 func(http.Header, []byte) (*codenamev1.NameResult, error)
	}{
		{"REST", http.MethodGet, "/v1/codename?category=science", nil, "", readREST},
		{"gRPC-Web", http.MethodPost, path, grpcWebHeaders, grpcBody, readGRPCWeb},
		{"Connect JSON", http.MethodPost, path, connectHeaders, jsonBody, readConnect},
	} {
		b.Run(tt.name, func(b *testing.B) {
			var body []byte
			if tt.bodyFile != "" {
				if body, err = os.ReadFile(tt.bodyFile); err != nil {
					b.Fatal(err)
				}
			}
			call := func() *httptest.ResponseRecorder {
				r := httptest.NewRequestWithContext(b.Context(), tt.method, tt.target, bytes.NewReader(body))
				for _, h := range tt.headers {
					k, v, _ := strings.Cut(h, ":")
					r.Header.Set(k, strings.TrimSpace(v))
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			// One answer read whole, outside the loop: the loop then only
			// checks the status, as the REST case always did.
			w := call()
			if res, err := tt.read(w.Result().Header, w.Body.Bytes()); w.Code != http.StatusOK || err != nil || res.GetName() == "" {
				b.Fatalf("status %d, %v: %q", w.Code, err, w.Body)
			}
			b.ReportAllocs()
			stop := measureCPU(b)
			for b.Loop() {
				if w := call(); w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			stop()
		})
	}
}

// readREST decodes the REST answer of GetCodename.
func readREST(_ http.Header, body []byte) (*codenamev1.NameResult, error) {
	res := &codenamev1.NameResult{}
	return res, protojson.Unmarshal(body, res)
}

// startServer serves the gRPC server on an in-memory listener until the
// benchmark ends and returns a client connection to it.
func startServer(b *testing.B, logger *slog.Logger) *grpc.ClientConn {
	b.Helper()
	lis := bufconn.Listen(1 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- server.Serve(ctx, lis, server.Config{Logger: logger, DrainTimeout: time.Second})
	}()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-served; err != nil {
			b.Errorf("server.Serve: %v", err)
		}
	})
	return conn
}
