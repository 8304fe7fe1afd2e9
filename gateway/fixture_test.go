package gateway_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/codename-gateway/codename-gateway/gateway"
	"github.com/codename-gateway/codename-gateway/internal/grpctest"
	"github.com/codename-gateway/codename-gateway/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait in these tests.
const waitTimeout = 10 * time.Second

// maxBodyBytes is the gateway's body limit in these tests, small so that
// the limit is cheap to cross.
const maxBodyBytes = 1024

// serveCodenames runs server.Serve with cfg on an in-memory listener until
// the test ends, and returns a connection to it and the server's stop.
func serveCodenames(tb testing.TB, cfg server.Config) (*grpc.ClientConn, grpctest.Stop) {
	tb.Helper()
	lis := grpctest.Listen(tb)
	stop := grpctest.Run(tb, lis, waitTimeout, func(ctx context.Context, lis net.Listener) error {
		return server.Serve(ctx, lis, cfg)
	})
	return grpctest.Dial(tb, lis), stop
}

// newGateway is gateway.New, failing the test on an error.
func newGateway(tb testing.TB, conn grpc.ClientConnInterface, opts gateway.Options) http.Handler {
	tb.Helper()
	h, err := gateway.New(tb.Context(), conn, opts)
	if err != nil {
		tb.Fatalf("gateway.New: %v", err)
	}
	return h
}

// fakeGateway is the gateway over a fake gRPC server, srv, served until the
// test ends; dialOpts come after the in-memory dialer's.
func fakeGateway(tb testing.TB, srv *grpc.Server, opts gateway.Options, dialOpts ...grpc.DialOption) http.Handler {
	tb.Helper()
	return newGateway(tb, grpctest.Serve(tb, srv, dialOpts...), opts)
}

// dialGateway is the gateway over a connection to target, which need not
// answer: for what the gateway does without the server, or when it cannot
// reach it. dialOpts come before insecure credentials.
func dialGateway(t *testing.T, target string, opts gateway.Options, dialOpts ...grpc.DialOption) http.Handler {
	t.Helper()
	conn, err := grpc.NewClient(target, append(dialOpts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return newGateway(t, conn, opts)
}

// startGateway runs server.Serve on an in-memory listener and returns the
// gateway's handler over a connection to it, and a function that shuts
// the gRPC server down and waits for it (a failure to stop fails the test).
func startGateway(t *testing.T) (http.Handler, func()) {
	t.Helper()
	return startGatewayWith(t, gateway.Options{MaxBodyBytes: maxBodyBytes})
}

// startGatewayWith is startGateway with the given gateway options.
func startGatewayWith(t *testing.T, opts gateway.Options) (http.Handler, func()) {
	t.Helper()
	conn, stop := serveCodenames(t, server.Config{StreamInterval: 20 * time.Millisecond, DrainTimeout: time.Second})
	return newGateway(t, conn, opts), func() { _, _ = stop() } // its error fails the test at its end
}

// serveGateway is startGateway served over HTTP/1.1 until the test ends.
func serveGateway(t *testing.T) (*httptest.Server, func()) {
	t.Helper()
	h, shutdown := startGateway(t)
	return serveHTTP1(t, h), shutdown
}

// serveHTTP1 serves h over plain HTTP/1.1, where full duplex is up to the
// handler to ask for, until the test ends.
func serveHTTP1(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

// serveHTTP2 serves h over TLS with HTTP/2, as HAProxy reaches the gateway,
// until the test ends. HTTP/2 is full-duplex: a client reads the response
// while it still writes the request body.
func serveHTTP2(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}
