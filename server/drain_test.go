package server

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
)

// TestServeDrains checks the shutdown order: health turns NOT_SERVING,
// streams end with UNAVAILABLE so clients reconnect elsewhere, and Serve
// returns nil well within DrainTimeout.
func TestServeDrains(t *testing.T) {
	const drainTimeout = 5 * time.Second
	s := startServer(t, Config{StreamInterval: time.Hour, DrainTimeout: drainTimeout})
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()

	health := healthpb.NewHealthClient(s.conn)
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	watch, err := health.Watch(watchCtx, &healthpb.HealthCheckRequest{Service: serviceName})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if got := recvHealth(t, watch); got != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health before shutdown = %v, want SERVING", got)
	}
	stream := openStream(t, ctx, s.client, "space")
	if got := recvCategory(t, stream); got != "space" {
		t.Fatalf("first name is from %q, want space", got)
	}

	go s.shutdown()

	if got := recvHealth(t, watch); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health after shutdown = %v, want NOT_SERVING", got)
	}
	stopWatching() // a watch never ends by itself; let the drain finish

	_, err = stream.Recv()
	if got, want := status.Code(err), codes.Unavailable; got != want {
		t.Errorf("open stream ended with %v (%v), want %v", got, err, want)
	}

	for _, svc := range []string{"", serviceName} {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("Check(%q) after shutdown = %v, want NOT_SERVING or an error", svc, resp.GetStatus())
		}
	}

	took, err := s.shutdown()
	if err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
	if took >= drainTimeout {
		t.Errorf("Serve took %v to drain, want less than DrainTimeout %v", took, drainTimeout)
	}
	if s.logs.Has("drain timed out, closing remaining connections") {
		t.Error("drain timed out, want every call to have finished")
	}
}

// TestServeDrainTimeout holds a health watch open, which nothing ends, and
// checks that Serve closes it once DrainTimeout has passed.
func TestServeDrainTimeout(t *testing.T) {
	const drainTimeout = 100 * time.Millisecond
	s := startServer(t, Config{DrainTimeout: drainTimeout})
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	// A reflection stream lives until its client ends it, so it holds the
	// graceful stop open until the timeout.
	refl, err := reflectionpb.NewServerReflectionClient(s.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatalf("ServerReflectionInfo: %v", err)
	}
	if err := refl.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := refl.Recv(); err != nil {
		t.Fatal(err)
	}

	took, err := s.shutdown()
	if err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
	if took < drainTimeout || took > waitTimeout {
		t.Errorf("Serve took %v, want about DrainTimeout %v", took, drainTimeout)
	}
	if !s.logs.Has("drain timed out, closing remaining connections") {
		t.Error("no warning that the drain timed out")
	}
	if _, err := refl.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("reflection stream ended with %v, want Unavailable", err)
	}
}

// TestServeEndsHealthWatchOnDrain: a watcher (a gateway, say) is told
// NOT_SERVING, then its Watch ends, so that it cannot hold the drain open.
func TestServeEndsHealthWatchOnDrain(t *testing.T) {
	const drainTimeout = 5 * time.Second
	s := startServer(t, Config{DrainTimeout: drainTimeout})
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	watch, err := healthpb.NewHealthClient(s.conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: serviceName})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	if got := recvHealth(t, watch); got != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, want SERVING", got)
	}
	took, err := s.shutdown()
	if err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
	if took >= drainTimeout {
		t.Errorf("Serve took %v: the Watch held the drain open", took)
	}
	if got := recvHealth(t, watch); got != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health = %v, want NOT_SERVING", got)
	}
	if _, err := watch.Recv(); err == nil {
		t.Error("Watch still open after the drain")
	}
}

func recvHealth(t *testing.T, watch grpc.ServerStreamingClient[healthpb.HealthCheckResponse]) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	resp, err := watch.Recv()
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	return resp.GetStatus()
}
