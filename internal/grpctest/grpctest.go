// Package grpctest is the one in-memory gRPC fixture of the unit tests: a
// bufconn listener, a client connection to it, and a server running on it
// until the test ends, with no ports and no sleeps.
//
// A fake grpc.Server is one call:
//
//	conn := grpctest.Serve(t, grpc.NewServer(...))
//
// A function that serves until its context ends, such as server.Serve, is
// three, so that the test keeps the listener and the stop:
//
//	lis := grpctest.Listen(t)
//	stop := grpctest.Run(t, lis, 10*time.Second, func(ctx context.Context, lis net.Listener) error {
//		return server.Serve(ctx, lis, server.Config{})
//	})
//	conn := grpctest.Dial(t, lis)
//
// Cleanups run in the reverse order of their registration, so a connection
// dialled after Run is closed before the server is stopped: no call of the
// test's holds up the server's drain.
package grpctest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
)

// bufferSize is each direction's buffer of a connection: large enough that
// no test's message waits for the other side to read.
const bufferSize = 1 << 20

// Listen returns an in-memory listener, closed when the test ends.
func Listen(tb testing.TB) *bufconn.Listener {
	tb.Helper()
	lis := bufconn.Listen(bufferSize)
	tb.Cleanup(func() { _ = lis.Close() })
	return lis
}

// Dial returns a client connection to lis, closed when the test ends. opts
// come after the fixture's own (the dialer and insecure credentials), so a
// test may replace either: grpc.WithContextDialer around lis.DialContext to
// watch the connections, for instance.
func Dial(tb testing.TB, lis *bufconn.Listener, opts ...grpc.DialOption) *grpc.ClientConn {
	tb.Helper()
	opts = append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, opts...)
	// passthrough: the target is no name to resolve, the dialer ignores it.
	conn, err := grpc.NewClient("passthrough:///bufnet", opts...)
	if err != nil {
		tb.Fatalf("grpc.NewClient: %v", err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Serve serves srv on a new in-memory listener until the test ends, and
// returns a connection to it dialled with opts. srv is stopped at once, not
// gracefully: a fake server has nothing to drain.
func Serve(tb testing.TB, srv *grpc.Server, opts ...grpc.DialOption) *grpc.ClientConn {
	tb.Helper()
	lis := Listen(tb)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	tb.Cleanup(func() {
		srv.Stop()
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			tb.Errorf("grpc.Server.Serve: %v", err)
		}
	})
	return Dial(tb, lis, opts...)
}

// Stop ends what Run started: it cancels serve's context and waits for
// serve to return, at most Run's limit. It returns how long that took and
// serve's error, or an error saying serve did not return. Every call
// returns what the first returned, the time counted from the first call.
type Stop func() (time.Duration, error)

// Run calls serve on a goroutine of its own with lis and a context that
// ends when the returned Stop is called or the test ends; at the test's end
// a serve error, or a serve that does not return within limit of its
// context's end, fails the test.
func Run(tb testing.TB, lis net.Listener, limit time.Duration, serve func(context.Context, net.Listener) error) Stop {
	tb.Helper()
	// Not tb.Context(), which ends before any cleanup runs: the test's
	// connections, closed by cleanups registered after this one, would
	// still be open when serve begins to drain.
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serve(ctx, lis) }()
	stop := sync.OnceValues(func() (time.Duration, error) {
		start := time.Now()
		cancel()
		timer := time.NewTimer(limit)
		defer timer.Stop()
		select {
		case err := <-served:
			return time.Since(start), err
		case <-timer.C:
			return time.Since(start), fmt.Errorf("serve did not return within %v of its context's end", limit)
		}
	})
	tb.Cleanup(func() {
		if _, err := stop(); err != nil {
			tb.Errorf("serve: %v", err)
		}
	})
	return stop
}
