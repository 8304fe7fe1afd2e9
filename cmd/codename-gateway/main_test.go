package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/codename-gateway/codename-gateway/internal/poll"
	"github.com/codename-gateway/codename-gateway/internal/runtest"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = runtest.Timeout

// healthServer serves grpc.health.v1, SERVING, on a loopback port, and
// never answers any other call.
func healthServer(t *testing.T) string {
	t.Helper()
	return serveHealth(t, grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		<-stream.Context().Done()
		return stream.Context().Err()
	}))
}

// serveHealth serves grpc.health.v1, SERVING, with opts on a loopback
// port until the test ends, and returns its address.
func serveHealth(t *testing.T, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

// startRun calls run with args in the background; it is stopped when the
// test ends.
func startRun(t *testing.T, args ...string) *runtest.Run {
	t.Helper()
	return startRunEnv(t, nil, args...)
}

// startRunEnv is startRun with environment variables.
func startRunEnv(t *testing.T, env map[string]string, args ...string) *runtest.Run {
	t.Helper()
	return runtest.Start(t, run, append([]string{"codename-gateway"}, args...), env)
}

// TestAdminListener: the metrics are served on the admin listener, with
// the gateway's health, and nowhere on the REST listener.
func TestAdminListener(t *testing.T) {
	g := startRun(t, "-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-grpc-addr", healthServer(t), "-drain-delay", "0")
	public, admin := g.Addr(t, "REST"), g.Addr(t, "admin")
	runtest.CheckAnswers(t, []runtest.Answer{
		{Name: "admin metrics", Addr: admin, Path: "/metrics", Code: 200, Body: "codename_gateway_http_requests_in_flight"},
		{Name: "admin metrics include the process's", Addr: admin, Path: "/metrics", Code: 200, Body: "go_goroutines"},
		{Name: "admin health", Addr: admin, Path: "/healthz", Code: 200, Body: "SERVING"},
		{Name: "admin has nothing else", Addr: admin, Path: "/v1/codename", Code: 404},
		{Name: "public metrics", Addr: public, Path: "/metrics", Code: 404, Body: `"code":5`},
		{Name: "public metrics, encoded", Addr: public, Path: "/%6detrics", Code: 404, Body: `"code":5`},
		{Name: "public health", Addr: public, Path: "/healthz", Code: 200, Body: "SERVING"},
	})
	if err := g.Stop(t); err != nil {
		t.Errorf("run: %v", err)
	}
}

// TestCallTimeoutFromEnv: CODENAME_CALL_TIMEOUT bounds a unary call that
// the server does not answer.
func TestCallTimeoutFromEnv(t *testing.T) {
	g := startRunEnv(t, map[string]string{"CODENAME_CALL_TIMEOUT": "200ms"}, "-addr", "127.0.0.1:0", "-admin-addr", "", "-grpc-addr", healthServer(t), "-drain-delay", "0")
	public := g.Addr(t, "REST")
	start := time.Now()
	code, body := runtest.Get(t, public, "/v1/codename")
	if elapsed := time.Since(start); code != http.StatusGatewayTimeout || elapsed > 5*time.Second {
		t.Errorf("GET /v1/codename = %d after %v, want 504 after about 200ms; body:\n%s", code, elapsed, body)
	}
}

// TestSSEHeartbeat: -sse-heartbeat, or CODENAME_SSE_HEARTBEAT, sets how
// soon an idle Server-Sent Events stream carries a comment; the server here
// never sends a codename, and the default heartbeat is longer than the wait.
func TestSSEHeartbeat(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{name: "flag", args: []string{"-sse-heartbeat", "50ms"}},
		{name: "environment", env: map[string]string{"CODENAME_SSE_HEARTBEAT": "50ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-addr", "127.0.0.1:0", "-admin-addr", "", "-grpc-addr", healthServer(t), "-drain-delay", "0"}, tt.args...)
			g := startRunEnv(t, tt.env, args...)
			conn, err := net.Dial("tcp", g.Addr(t, "REST"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(waitTimeout))
			if _, err := io.WriteString(conn, "GET /v1/codenames:stream HTTP/1.1\r\nHost: gateway\r\nAccept: text/event-stream\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			// The body is left unclosed: closing it would read on to the
			// end of a stream that has none; closing conn ends both.
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			body := bufio.NewReader(resp.Body)
			for {
				line, err := body.ReadString('\n')
				if err != nil {
					t.Fatalf("no comment line before %v: %v", waitTimeout, err)
				}
				if strings.HasPrefix(line, ":") {
					break
				}
			}
		})
	}
}

// TestDrainFromEnv: on a signal, with CODENAME_DRAIN_DELAY set, both
// /healthz answer 503 for that long before run returns; the admin listener
// lasts until then.
func TestDrainFromEnv(t *testing.T) {
	const delay = time.Second
	g := startRunEnv(t, map[string]string{"CODENAME_DRAIN_DELAY": delay.String()}, "-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-grpc-addr", healthServer(t))
	public, admin := g.Addr(t, "REST"), g.Addr(t, "admin")
	if code, body := runtest.Get(t, public, "/healthz"); code != http.StatusOK {
		t.Fatalf("public /healthz = %d before the drain, want 200:\n%s", code, body)
	}
	g.Signal()
	stopped := time.Now()
	for _, addr := range []string{admin, public} {
		var code int
		var body string
		if _, ok := poll.Until(delay/2-time.Since(stopped), func() bool {
			code, body = runtest.Get(t, addr, "/healthz")
			return code == http.StatusServiceUnavailable
		}); !ok {
			t.Fatalf("/healthz on %s = %d during the drain, want 503:\n%s", addr, code, body)
		}
	}
	if err := g.Stop(t); err != nil {
		t.Errorf("run: %v", err)
	}
	if elapsed := time.Since(stopped); elapsed < delay {
		t.Errorf("run returned %v after the signal, before the drain delay of %v", elapsed, delay)
	}
}

// TestAdminListenerDisabled: an empty -admin-addr means no admin listener.
func TestAdminListenerDisabled(t *testing.T) {
	startRun(t, "-addr", "127.0.0.1:0", "-admin-addr", "", "-grpc-addr", healthServer(t), "-drain-delay", "0").NotServing(t, "REST", "admin")
}

// TestPortTaken: a listener whose port is taken fails run with an error
// that names the address.
func TestPortTaken(t *testing.T) {
	runtest.CheckPortTaken(t, run, []string{"codename-gateway", "-grpc-addr", "127.0.0.1:1"}, []string{"-addr", "-admin-addr"}, func(t *testing.T, _, taken string, err error) {
		if err == nil || !strings.Contains(err.Error(), taken) {
			t.Errorf("run = %v, want an error naming %s", err, taken)
		}
	})
}

// TestClientKeepalive: the gateway pings its gRPC connections, so that a
// replica that vanished is noticed, but never more often than the server's
// enforcement policy allows (every 10 s), or the server would close them.
func TestClientKeepalive(t *testing.T) {
	const serverMinTime = 10 * time.Second
	if clientKeepalive.Time < serverMinTime {
		t.Errorf("keepalive Time = %v, below the server's MinTime %v", clientKeepalive.Time, serverMinTime)
	}
	if clientKeepalive.Time == 0 || clientKeepalive.Time > time.Minute || clientKeepalive.Timeout == 0 || clientKeepalive.Timeout > 30*time.Second {
		t.Errorf("keepalive = %+v, want a ping at most every minute that fails within 30 s", clientKeepalive)
	}
	if !clientKeepalive.PermitWithoutStream {
		t.Error("keepalive does not ping idle connections")
	}
}

// TestTuning: the gateway applies GOGC 200 and its share of the cores
// itself, so that systemd and Compose run it as codename-stack does.
func TestTuning(t *testing.T) {
	runtest.CheckTuning(t, func(env map[string]string) *runtest.Run {
		return startRunEnv(t, env, "-addr", "127.0.0.1:0", "-admin-addr", "", "-grpc-addr", healthServer(t), "-drain-delay", "0")
	}, "REST")
}
