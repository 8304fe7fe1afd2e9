// Package server is the gRPC side of the project: the CodenameCreator service
// around the codename generator, grpc.health.v1 and server reflection, served
// on a listener the caller provides and drained gracefully on shutdown.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// Config tunes the server. The zero value is usable but logs nowhere.
type Config struct {
	// StreamInterval is the pause between codenames on a stream; zero or
	// less sends as fast as the client reads.
	StreamInterval time.Duration
	// DrainTimeout bounds how long Serve waits for calls in flight once its
	// context ends, before it closes the remaining connections. Zero means
	// 10 seconds.
	DrainTimeout time.Duration
	// Logger receives one line per finished call. Nil discards them.
	Logger *slog.Logger
}

// Serve serves gRPC on lis until ctx ends, then drains: health turns to
// NOT_SERVING, open streams end with UNAVAILABLE so clients reconnect
// elsewhere, unary calls in flight finish, and Serve returns nil.
func Serve(ctx context.Context, lis net.Listener, cfg Config) error {
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	// One log line per finished call, with method, code and duration; HAProxy
	// cannot log gRPC status codes, so this is where operators find them.
	// Health checks come every few seconds from every checker and would
	// drown the rest, so they are not logged.
	logCalls := logging.WithLogOnEvents(logging.FinishCall)
	notHealth := selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
		return c.Service != healthpb.Health_ServiceDesc.ServiceName
	})
	gs := grpc.NewServer(
		grpc.ChainUnaryInterceptor(selector.UnaryServerInterceptor(logging.UnaryServerInterceptor(slogAdapter(logger), logCalls), notHealth)),
		grpc.ChainStreamInterceptor(selector.StreamServerInterceptor(logging.StreamServerInterceptor(slogAdapter(logger), logCalls), notHealth)),
	)
	draining := make(chan struct{})
	codenamev1.RegisterCodenameCreatorServer(gs, &service{interval: cfg.StreamInterval, draining: draining})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	hs.SetServingStatus(codenamev1.CodenameCreator_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	reflection.Register(gs)

	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	hs.Shutdown() // every service reports NOT_SERVING from now on
	close(draining)
	stopped := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(cfg.DrainTimeout)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		logger.Warn("drain timed out, closing remaining connections", "timeout", cfg.DrainTimeout)
		gs.Stop()
		<-stopped
	}
	<-served
	return nil
}

// slogAdapter lets go-grpc-middleware's logging interceptors write to slog.
func slogAdapter(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}
