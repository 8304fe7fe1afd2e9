package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// drainingHealth is grpc-go's health server, except that Watch streams end
// when the server drains. grpc-go's Watch never ends on its own, so every
// gateway watching this replica would hold the graceful stop open until
// its timeout; the watchers are told NOT_SERVING before their stream ends.
type drainingHealth struct {
	*health.Server
	draining <-chan struct{}
}

func (h drainingHealth) Watch(req *healthpb.HealthCheckRequest, stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	go func() {
		select {
		case <-h.draining:
			cancel()
		case <-ctx.Done():
		}
	}()
	ws := &watchStream{ServerStreamingServer: stream, ctx: ctx, last: -1}
	err := h.Server.Watch(req, ws)
	// The drain makes NOT_SERVING and the end of the stream arrive
	// together, and grpc-go's Watch may pick the end first; a watcher
	// must not be left believing the last SERVING it heard.
	if isClosed(h.draining) && stream.Context().Err() == nil && ws.last != healthpb.HealthCheckResponse_NOT_SERVING {
		_ = stream.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING})
	}
	return err
}

// watchStream is a Watch stream with a context that ends on drain; it
// remembers the last status it sent.
type watchStream struct {
	grpc.ServerStreamingServer[healthpb.HealthCheckResponse]
	ctx  context.Context
	last healthpb.HealthCheckResponse_ServingStatus
}

func (w *watchStream) Context() context.Context { return w.ctx }

func (w *watchStream) Send(resp *healthpb.HealthCheckResponse) error {
	err := w.ServerStreamingServer.Send(resp)
	if err == nil {
		w.last = resp.GetStatus()
	}
	return err
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
