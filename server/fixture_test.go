package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/grpctest"
	"github.com/codename-gateway/codename-gateway/internal/logtest"
	"github.com/codename-gateway/codename-gateway/internal/poll"
	"github.com/codename-gateway/codename-gateway/internal/telemetry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait in these tests. It is far longer than any
// of them should take, and far shorter than the intervals the tests use to
// prove that something did not wait for a tick.
const waitTimeout = 10 * time.Second

var serviceName = codenamev1.CodenameCreator_ServiceDesc.ServiceName

// testServer is a Serve running on an in-memory listener, with a client
// connection to it.
type testServer struct {
	server *grpcServer
	lis    *bufconn.Listener
	conn   *grpc.ClientConn
	client codenamev1.CodenameCreatorClient
	logs   *logtest.Recorder
	// shutdown ends Serve's context and waits for it to return; every call
	// returns what the first did.
	shutdown grpctest.Stop
}

func startServer(t *testing.T, cfg Config, opts ...grpc.DialOption) *testServer {
	t.Helper()
	return startServerWith(t, cfg, nil, opts...)
}

// startServerWith is startServer with the services that register adds to
// the server next to its own.
func startServerWith(t *testing.T, cfg Config, register func(grpc.ServiceRegistrar), opts ...grpc.DialOption) *testServer {
	t.Helper()
	logs := withRecorder(&cfg)
	s := newServer(cfg)
	if register != nil {
		register(s.gs)
	}
	lis := grpctest.Listen(t)
	shutdown := serveBuilt(t, lis, s)
	conn := grpctest.Dial(t, lis, opts...)
	return &testServer{
		server:   s,
		lis:      lis,
		conn:     conn,
		client:   codenamev1.NewCodenameCreatorClient(conn),
		logs:     logs,
		shutdown: shutdown,
	}
}

// serve runs Serve on lis until the test ends, logging to the returned
// recorder unless cfg has a Logger.
func serve(t *testing.T, lis net.Listener, cfg Config) (*logtest.Recorder, grpctest.Stop) {
	t.Helper()
	logs := withRecorder(&cfg)
	return logs, serveBuilt(t, lis, newServer(cfg))
}

// withRecorder makes cfg log to a new recorder, unless it has a Logger.
func withRecorder(cfg *Config) *logtest.Recorder {
	logs := new(logtest.Recorder)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(logs)
	}
	return logs
}

// serveBuilt serves s on lis, as Serve does, until the test ends; its stop
// waits as long as the drain may take, and waitTimeout more.
func serveBuilt(t *testing.T, lis net.Listener, s *grpcServer) grpctest.Stop {
	t.Helper()
	return grpctest.Run(t, lis, waitTimeout+s.cfg.DrainDelay+s.cfg.DrainTimeout, s.serve)
}

// listenTCP listens on a free loopback port.
func listenTCP(tb testing.TB) net.Listener {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return lis
}

// dialTCP returns a client connection to addr, with the trace propagation
// that a gateway's connection has, closed when the test ends.
func dialTCP(tb testing.TB, addr string) *grpc.ClientConn {
	tb.Helper()
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, telemetry.DialOptions()...)
	conn, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		tb.Fatalf("grpc.NewClient: %v", err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

// tcpServer is a Serve on a real TCP port, which gRPC and HTTP/1.1
// clients share.
type tcpServer struct {
	addr      string
	adminAddr string // where cfg.MetricsListener listens, if set
	logs      *logtest.Recorder
	shutdown  grpctest.Stop
}

func startTCPServer(t *testing.T, cfg Config) *tcpServer {
	t.Helper()
	lis := listenTCP(t)
	s := &tcpServer{addr: lis.Addr().String()}
	if cfg.MetricsListener != nil {
		s.adminAddr = cfg.MetricsListener.Addr().String()
	}
	s.logs, s.shutdown = serve(t, lis, cfg)
	return s
}

// dialGRPC returns a client on a connection of its own to s, closed when
// the test ends (before Serve is stopped).
func (s *tcpServer) dialGRPC(t *testing.T) codenamev1.CodenameCreatorClient {
	t.Helper()
	return codenamev1.NewCodenameCreatorClient(dialTCP(t, s.addr))
}

// get asks s's gRPC port for path over HTTP/1.1, on a new connection
// each time so that every request goes through the split afresh.
func (s *tcpServer) get(ctx context.Context, path string) (code int, body string, err error) {
	return httpGet(ctx, s.addr, path, nil)
}

// httpGet asks addr for path over HTTP/1.1, on a new connection; over TLS
// if cfg is not nil, then offering only http/1.1 as HAProxy's check-alpn
// http/1.1 does.
func httpGet(ctx context.Context, addr, path string, cfg *tls.Config) (code int, body string, err error) {
	scheme, transport := "http", &http.Transport{DisableKeepAlives: true}
	if cfg != nil {
		cfg = cfg.Clone()
		cfg.NextProtos = []string{"http/1.1"}
		scheme, transport.TLSClientConfig = "https", cfg
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 1 {
		return 0, "", fmt.Errorf("response is %s, want HTTP/1.x", resp.Proto)
	}
	if cfg != nil && resp.TLS.NegotiatedProtocol != "http/1.1" {
		return 0, "", fmt.Errorf("negotiated %q, want http/1.1", resp.TLS.NegotiatedProtocol)
	}
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// mustGet is get that fails the test on an error.
func (s *tcpServer) mustGet(t *testing.T, path string) (code int, body string) {
	t.Helper()
	return mustGet(t, s.addr, path)
}

// mustGetAdmin is mustGet on the admin listener.
func (s *tcpServer) mustGetAdmin(t *testing.T, path string) (code int, body string) {
	t.Helper()
	return mustGet(t, s.adminAddr, path)
}

func mustGet(t *testing.T, addr, path string) (code int, body string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	code, body, err := httpGet(ctx, addr, path, nil)
	if err != nil {
		t.Fatalf("GET %s%s: %v", addr, path, err)
	}
	return code, body
}

// eventually asks check again until it returns true, and fails the test
// with check's last description if that takes longer than waitTimeout.
func eventually(t *testing.T, what string, check func() (ok bool, last string)) {
	t.Helper()
	poll.For(t, what, waitTimeout, func() error {
		if ok, last := check(); !ok {
			return errors.New("last: " + last)
		}
		return nil
	})
}
