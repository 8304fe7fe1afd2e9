package grpctest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestServe(t *testing.T) {
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	conn := Serve(t, srv)
	resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if got := resp.GetStatus(); got != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("status = %v, want SERVING", got)
	}
}

// TestDialOptionsComeLast checks that a test's own dialer replaces the
// fixture's.
func TestDialOptionsComeLast(t *testing.T) {
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis := Listen(t)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	var dialed atomic.Int32
	conn := Dial(t, lis, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		dialed.Add(1)
		return lis.DialContext(ctx)
	}))
	if _, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if got := dialed.Load(); got != 1 {
		t.Errorf("the test's dialer was called %d times, want 1", got)
	}
}

// TestRun checks that Stop ends serve's context and returns serve's error,
// the same on a second call, and that at the test's end a connection
// dialled after Run is closed before serve's context ends and serve's error
// fails the test.
func TestRun(t *testing.T) {
	tb := &cleanupTB{TB: t}
	errServe := errors.New("served")
	lis := Listen(tb)
	var conn *grpc.ClientConn
	connAtEnd := make(chan connectivity.State, 1)
	stop := Run(tb, lis, time.Second, func(ctx context.Context, lis net.Listener) error {
		srv := grpc.NewServer()
		healthpb.RegisterHealthServer(srv, health.NewServer())
		go func() { _ = srv.Serve(lis) }()
		<-ctx.Done()
		connAtEnd <- conn.GetState()
		srv.Stop()
		return errServe
	})
	conn = Dial(tb, lis)
	if _, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("Check: %v", err)
	}
	tb.end()
	if got := <-connAtEnd; got != connectivity.Shutdown {
		t.Errorf("connection %v when serve's context ended, want %v", got, connectivity.Shutdown)
	}
	if want := "serve: served"; len(tb.errors) != 1 || tb.errors[0] != want {
		t.Errorf("errors at the test's end = %q, want [%q]", tb.errors, want)
	}
	took, err := stop()
	if !errors.Is(err, errServe) {
		t.Errorf("Stop = %v, want serve's error %v", err, errServe)
	}
	if again, err2 := stop(); again != took || err2 != err {
		t.Errorf("second Stop = %v, %v; want the first's %v, %v", again, err2, took, err)
	}
}

// TestRunLimit checks that Stop gives up on a serve that does not return
// within the limit.
func TestRunLimit(t *testing.T) {
	tb := &cleanupTB{TB: t}
	release := make(chan struct{})
	defer close(release)
	stop := Run(tb, Listen(tb), 20*time.Millisecond, func(context.Context, net.Listener) error {
		<-release
		return nil
	})
	if _, err := stop(); err == nil || !strings.Contains(err.Error(), "did not return within 20ms") {
		t.Errorf("Stop = %v, want it to say serve did not return within 20ms", err)
	}
	tb.end()
	if len(tb.errors) != 1 {
		t.Errorf("errors at the test's end = %q, want one", tb.errors)
	}
}

// cleanupTB is a test whose end the test calls, recording the errors
// reported instead of failing.
type cleanupTB struct {
	testing.TB
	cleanups []func()
	errors   []string
}

func (tb *cleanupTB) Cleanup(f func()) { tb.cleanups = append(tb.cleanups, f) }
func (tb *cleanupTB) Errorf(format string, args ...any) {
	tb.errors = append(tb.errors, fmt.Sprintf(format, args...))
}

func (tb *cleanupTB) end() {
	for i := len(tb.cleanups) - 1; i >= 0; i-- {
		tb.cleanups[i]()
	}
}
