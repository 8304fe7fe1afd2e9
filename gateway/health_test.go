package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/codename-gateway/codename-gateway/gateway"
)

// countingHealth is a grpc.health.v1 server that counts the Checks of each
// service and takes a little while over each, as a real one across a
// network would, so that concurrent /healthz requests overlap a call.
type countingHealth struct {
	healthpb.UnimplementedHealthServer
	mu     sync.Mutex
	checks map[string]int
}

func (h *countingHealth) Check(_ context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.mu.Lock()
	h.checks[req.GetService()]++
	h.mu.Unlock()
	// Not a poll: the Check takes a while on purpose, as one across a
	// network would, so that concurrent /healthz requests overlap it.
	time.Sleep(20 * time.Millisecond)
	switch req.GetService() {
	case "", "codename.v1.CodenameCreator":
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
	}
	return nil, status.Error(codes.NotFound, "unknown service")
}

// count returns the number of Checks of service so far.
func (h *countingHealth) count(service string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.checks[service]
}

// total returns the number of Checks so far, of every service.
func (h *countingHealth) total() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, c := range h.checks {
		n += c
	}
	return n
}

// healthGateway is the gateway over a gRPC server that has nothing but
// the health service hs.
func healthGateway(t *testing.T, hs healthpb.HealthServer) http.Handler {
	t.Helper()
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	return fakeGateway(t, gs, gateway.Options{})
}

func startCountingHealth(t *testing.T) (*countingHealth, http.Handler) {
	t.Helper()
	hs := &countingHealth{checks: map[string]int{}}
	return hs, healthGateway(t, hs)
}

// TestHealthzIsCached: 1000 concurrent /healthz requests cost the server a
// handful of Checks, at most one per 250 ms and one in flight, not one
// each.
func TestHealthzIsCached(t *testing.T) {
	const ttl = 250 * time.Millisecond // the gateway's cache period
	hs, h := startCountingHealth(t)
	ts := serveHTTP1(t, h)
	ts.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 100

	var (
		wg    sync.WaitGroup
		wrong atomic.Int64
		start = time.Now()
	)
	for range 1000 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/healthz", nil)
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				wrong.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if n := wrong.Load(); n != 0 {
		t.Errorf("%d of 1000 /healthz were not 200", n)
	}
	// One Check at the start, and at most one more per period after it.
	limit := 1 + int(elapsed/ttl)
	if got := hs.count(""); got < 1 || got > limit || got > 20 {
		t.Errorf("1000 /healthz in %v made %d Checks, want 1 to %d", elapsed, got, limit)
	}
	t.Logf("1000 /healthz in %v made %d Checks", elapsed, hs.count(""))
}

// TestHealthzServices: /healthz?service= is checked for the services the
// server registers, each cached on its own; any other name is NOT_FOUND
// without a call.
func TestHealthzServices(t *testing.T) {
	hs, h := startCountingHealth(t)
	tests := []struct {
		name      string
		target    string
		wantCode  int
		service   string
		wantCalls int
	}{
		{name: "the server", target: "/healthz", wantCode: 200, service: "", wantCalls: 1},
		{name: "the server again, cached", target: "/healthz?service=", wantCode: 200, service: "", wantCalls: 1},
		{name: "CodenameCreator", target: "/healthz?service=codename.v1.CodenameCreator", wantCode: 200,
			service: "codename.v1.CodenameCreator", wantCalls: 1},
		{name: "CodenameCreator again, cached", target: "/healthz?service=codename.v1.CodenameCreator", wantCode: 200,
			service: "codename.v1.CodenameCreator", wantCalls: 1},
		{name: "unknown service", target: "/healthz?service=nope", wantCode: 404, service: "nope", wantCalls: 0},
		{name: "another unknown service", target: "/healthz?service=grpc.health.v1.Health", wantCode: 404,
			service: "grpc.health.v1.Health", wantCalls: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, h, "GET", tt.target, "", nil)
			if rec.Code != tt.wantCode {
				t.Errorf("status = %d, want %d; body:\n%s", rec.Code, tt.wantCode, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type = %q, want application/json", ct)
			}
			if got := hs.count(tt.service); got != tt.wantCalls {
				t.Errorf("%d Checks of %q so far, want %d", got, tt.service, tt.wantCalls)
			}
		})
	}
	if got := hs.total(); got != 2 {
		t.Errorf("%d Checks in all, want 2", got)
	}

	// Once the period is over, the next /healthz asks again.
	time.Sleep(300 * time.Millisecond)
	if rec := serve(t, h, "GET", "/healthz", "", nil); rec.Code != http.StatusOK {
		t.Errorf("status = %d after the period, want 200", rec.Code)
	}
	if got := hs.count(""); got != 2 {
		t.Errorf("%d Checks of the server after the period, want 2", got)
	}
}

// firstHangsHealth is a grpc.health.v1 server whose first Check never
// answers, as one on a replica whose host vanished would not, and whose
// later Checks say SERVING, as the other replicas would.
type firstHangsHealth struct {
	healthpb.UnimplementedHealthServer
	calls atomic.Int32
}

func (h *firstHangsHealth) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if h.calls.Add(1) == 1 {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// TestHealthzOutlivesALostReplica: a Check that gets no answer is sent
// again, so /healthz answers within HAProxy's 1 s check timeout while
// another replica can answer. Without it, one server whose host vanished
// made HAProxy mark every gateway down.
func TestHealthzOutlivesALostReplica(t *testing.T) {
	hs := &firstHangsHealth{}
	h := healthGateway(t, hs)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	rec := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, "GET", "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("/healthz with the first Check unanswered: %d %s after %v, want 200 within 1 s", rec.Code, rec.Body, time.Since(start))
	}
	if n := hs.calls.Load(); n != 2 {
		t.Errorf("server saw %d Checks, want 2 (the unanswered one and one more)", n)
	}
}
