package server

import (
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/grpctest"
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
	logs   *recorder
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
func serve(t *testing.T, lis net.Listener, cfg Config) (*recorder, grpctest.Stop) {
	t.Helper()
	logs := withRecorder(&cfg)
	return logs, serveBuilt(t, lis, newServer(cfg))
}

// withRecorder makes cfg log to a new recorder, unless it has a Logger.
func withRecorder(cfg *Config) *recorder {
	logs := new(recorder)
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
