package server

import (
	"context"
	"runtime"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestDrainingWatchSaysNotServingLast: when the drain begins, the status
// change and the end of the stream arrive together. grpc-go's Watch picks
// between them at random, so without care a watcher sometimes saw its
// stream end while its last word was still SERVING (CI caught it once in
// TestServeEndsHealthWatchOnDrain). Many rounds make the race near certain.
func TestDrainingWatchSaysNotServingLast(t *testing.T) {
	const rounds = 200
	for round := range rounds {
		hs := health.NewServer()
		hs.SetServingStatus(serviceName, healthpb.HealthCheckResponse_SERVING)
		draining := make(chan struct{})
		stream := &recordingWatch{ctx: t.Context(), onFirst: func() {
			hs.Shutdown()
			close(draining)
			// Lets the drain's cancel run before Send returns, so that
			// both cases of grpc-go's select are ready; the fix must not
			// depend on this, only the old failure does.
			for range 100 {
				runtime.Gosched()
			}
		}}
		if err := (drainingHealth{hs, draining}).Watch(&healthpb.HealthCheckRequest{Service: serviceName}, stream); err == nil {
			t.Fatalf("round %d: Watch ended with no error on drain", round)
		}
		if n := len(stream.sent); n == 0 || stream.sent[n-1] != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("round %d: watcher was sent %v, want NOT_SERVING last", round, stream.sent)
		}
	}
}

// recordingWatch is a Watch stream that records what it is sent and runs
// onFirst while the first message is being sent.
type recordingWatch struct {
	grpc.ServerStreamingServer[healthpb.HealthCheckResponse]
	ctx     context.Context
	onFirst func()
	sent    []healthpb.HealthCheckResponse_ServingStatus
}

func (w *recordingWatch) Context() context.Context { return w.ctx }

func (w *recordingWatch) Send(resp *healthpb.HealthCheckResponse) error {
	w.sent = append(w.sent, resp.GetStatus())
	if len(w.sent) == 1 {
		w.onFirst()
	}
	return nil
}
