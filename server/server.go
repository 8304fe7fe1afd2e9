// Package server is the gRPC side of the project: the CodenameCreator service
// around the codename generator, grpc.health.v1 and server reflection,
// served on a listener the caller provides and drained gracefully on
// shutdown. The same port answers HTTP/1.1 GET /healthz, because HAProxy 2.6
// cannot send a gRPC health check; Prometheus metrics are served only on an
// admin listener of their own, which HAProxy never forwards to. Given a
// REST listener (Config.REST), the server also runs the REST gateway in its
// own process, calling the service without a network hop.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/telemetry"
)

// Config tunes the server. The zero value is usable, with limits suited to
// a server anyone may reach, but logs nowhere and serves no metrics.
type Config struct {
	// StreamInterval is the pause between codenames on a stream; zero or
	// less sends as fast as the client reads.
	StreamInterval time.Duration
	// DrainDelay is how long the server keeps serving, with its health
	// already NOT_SERVING, before it stops accepting connections: time for
	// HAProxy's health checks to notice and send new calls elsewhere.
	DrainDelay time.Duration
	// DrainTimeout bounds how long Serve waits for calls in flight once it
	// stops accepting, before it closes the remaining connections. Zero
	// means 10 seconds.
	DrainTimeout time.Duration
	// Logger receives one line per finished call. Nil discards them.
	Logger *slog.Logger
	// MaxRecvMsgSize bounds one incoming gRPC message (grpc.MaxRecvMsgSize);
	// a bigger one fails the call with RESOURCE_EXHAUSTED and the server
	// goes on serving. A NameRequest is a few dozen bytes, so the bound is
	// there to keep a hostile client from pinning memory. Zero or less
	// means DefaultMaxRecvMsgSize.
	MaxRecvMsgSize int
	// MetricsListener, if set, serves GET /metrics (Prometheus) and GET
	// /healthz over plain HTTP, for operators only: the gRPC port is
	// reachable through HAProxy, so metrics stay off it. Serve closes it
	// when it returns. Nil serves metrics nowhere.
	MetricsListener net.Listener

	// REST, if set, serves the REST gateway from this process too, on a
	// listener of its own (colocated.go). Nil leaves REST to a separate
	// gateway process.
	REST *RESTConfig

	// TLS, if set, makes the gRPC port serve TLS only, gRPC and GET
	// /healthz alike: the hop from HAProxy or the gateway then crosses a
	// shared network unread. It should offer ALPN h2 and http/1.1 (HAProxy
	// checks health with check-alpn http/1.1), and may require client
	// certificates; tlsreload builds such a config, rotation included. The
	// admin listener stays cleartext, for operators on the host only. Nil
	// serves cleartext.
	TLS *tls.Config

	// MaxConcurrentStreams bounds the calls and streams open at once on
	// one HTTP/2 connection; a client that wants more waits for one to
	// end. Zero means DefaultMaxConcurrentStreams.
	MaxConcurrentStreams uint32
	// MaxConnectionIdle closes a connection that has had no call for that
	// long. Zero means DefaultMaxConnectionIdle; negative, no limit.
	MaxConnectionIdle time.Duration
	// MaxConnectionAge asks a client to reconnect (GOAWAY) once its
	// connection is that old, give or take 10 %. Zero means
	// DefaultMaxConnectionAge; negative, no limit.
	MaxConnectionAge time.Duration
	// MaxConnectionAgeGrace is how long the calls of a connection past
	// MaxConnectionAge may go on before it is closed. Zero means
	// DefaultMaxConnectionAgeGrace; negative, no limit.
	MaxConnectionAgeGrace time.Duration

	// testMinPingInterval replaces minClientPingInterval when positive,
	// so that tests need not wait for it.
	testMinPingInterval time.Duration
	// testUnary, if set, runs last before each unary handler, so that
	// tests can see what a call brings, from the network or in process.
	testUnary grpc.UnaryServerInterceptor
}

// DefaultMaxRecvMsgSize is the largest incoming gRPC message by default:
// 64 KiB, the same bound the REST gateway puts on a JSON body (grpc-go's
// own default is 4 MiB).
const DefaultMaxRecvMsgSize = 64 << 10

// streamWorkers is how many calls at a time run on reused goroutines: as
// many as a busy server has in flight (64 in bench/'s unary load). An idle
// worker keeps the stack it grew, a few KB to a few tens of KB; grpc-go
// replaces each worker after 65536 calls, which lets an overgrown one go.
const streamWorkers = 64

// APIKeyIDHeader carries a redacted form of the caller's API key, which
// HAProxy adds after checking the key (the key itself never reaches a
// backend). The server logs it with each call.
const APIKeyIDHeader = "x-api-key-id"

// Serve serves gRPC on lis until ctx ends. HTTP/1.1 requests on the same
// listener get GET /healthz (200 while SERVING, 503 otherwise); metrics are
// on cfg.MetricsListener. When ctx ends, Serve drains: health turns to
// NOT_SERVING, the server goes on serving for cfg.DrainDelay, then stops
// accepting, ends open streams with UNAVAILABLE so that clients reconnect
// elsewhere, lets unary calls in flight finish, closes cfg.MetricsListener
// and returns nil.
func Serve(ctx context.Context, lis net.Listener, cfg Config) error {
	return newServer(cfg).serve(ctx, lis)
}

// grpcServer is the *grpc.Server that Serve runs, with every option,
// interceptor and service of it, and what Serve needs to drain it. It is
// built apart from serving so that tests can add services of their own to
// exactly the server that production runs.
type grpcServer struct {
	gs       *grpc.Server
	cfg      Config // with defaults in place
	logger   *slog.Logger
	health   *health.Server
	reg      *prometheus.Registry
	draining chan struct{}
	// stopped is closed once the grpc.Server has stopped: from then on a
	// co-located gateway's in-process calls are refused too.
	stopped chan struct{}
	// What a co-located gateway's in-process calls run: the server's unary
	// interceptors, and its services' unary methods by full name.
	unaryInterceptors []grpc.UnaryServerInterceptor
	unaryMethods      map[string]unaryMethod
}

func newServer(cfg Config) *grpcServer {
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	if cfg.MaxRecvMsgSize <= 0 {
		cfg.MaxRecvMsgSize = DefaultMaxRecvMsgSize
	}
	cfg = withLimitDefaults(cfg)
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	metrics := prometheus.NewRegistry()
	calls := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
	openStreams := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "codename_open_streams",
		Help: "KeepGettingCodenames streams open now.",
	})
	metrics.MustRegister(calls, openStreams, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// Recovery comes last, next to the handler, so that a call that
	// panicked reaches the metrics and the call log as the INTERNAL it
	// answered, like any other failed call.
	recovered := recovery.WithRecoveryHandlerContext(recoverPanic(logger))
	// Each call's context carries the trace of the traceparent it came
	// with (HAProxy gives every request one), for the call log and for
	// OpenTelemetry when an exporter is configured; first, so that every
	// interceptor below sees it.
	opts := append(connectionOptions(cfg), telemetry.ServerOptions()...)
	// Kept apart, so that a co-located gateway's in-process calls run
	// exactly these (inprocess.go).
	unary := []grpc.UnaryServerInterceptor{
		calls.UnaryServerInterceptor(),
		callLogger{logger}.unary,
		recovery.UnaryServerInterceptor(recovered),
	}
	if cfg.testUnary != nil {
		unary = append(unary, cfg.testUnary)
	}
	gs := grpc.NewServer(append(opts,
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgSize),
		// Calls run on long-lived worker goroutines whose stacks have
		// already grown, instead of each on a new goroutine that grows its
		// stack from 2 KB by copying it several times: copying stacks was
		// 22 % of the server's CPU (perf, unary load). A call that finds
		// every worker busy gets a goroutine of its own, as without the
		// option. Measured with bench/: 20.1 -> 13.9 µs of server CPU per
		// direct gRPC call with 64 workers (16: 17.6 µs).
		grpc.NumStreamWorkers(streamWorkers),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(
			calls.StreamServerInterceptor(),
			callLogger{logger}.stream,
			recovery.StreamServerInterceptor(recovered),
		),
	)...)
	draining := make(chan struct{})
	reg := &recordingRegistrar{gs: gs, methods: map[string]unaryMethod{}}
	codenamev1.RegisterCodenameCreatorServer(reg, &service{interval: cfg.StreamInterval, draining: draining, open: openStreams})
	hs := health.NewServer()
	healthpb.RegisterHealthServer(reg, drainingHealth{hs, draining})
	hs.SetServingStatus(codenamev1.CodenameCreator_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	reflection.Register(gs)
	calls.InitializeMetrics(gs)
	return &grpcServer{gs: gs, cfg: cfg, logger: logger, health: hs, reg: metrics, draining: draining, stopped: make(chan struct{}),
		unaryInterceptors: unary, unaryMethods: reg.methods}
}

// serve is Serve, for a server already built.
func (s *grpcServer) serve(ctx context.Context, lis net.Listener) error {
	cfg, logger, gs, hs := s.cfg, s.logger, s.gs, s.health
	var httpServers sync.WaitGroup
	defer httpServers.Wait()
	serveHTTP := func(what string, lis net.Listener, h http.Handler) *http.Server {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		httpServers.Go(func() {
			if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				logger.Warn(what+" stopped", "err", err)
			}
		})
		return srv
	}
	if cfg.MetricsListener != nil {
		// Closed last, so that metrics can be scraped for the whole drain.
		admin := serveHTTP("admin listener", cfg.MetricsListener, adminHandler(hs, s.reg))
		defer admin.Close()
	}
	if cfg.TLS != nil {
		// Decrypted before the split, which then tells gRPC from HTTP/1.1
		// by the same first bytes as in cleartext; sniffTimeout bounds the
		// handshake too, since the first Read performs it.
		lis = tls.NewListener(lis, cfg.TLS)
	}
	rest, err := s.startREST(ctx)
	if err != nil {
		lis.Close()
		gs.Stop()
		return err
	}
	grpcLis, httpLis := split(lis)
	hsrv := serveHTTP("health endpoint", httpLis, healthHandler(hs))
	served := make(chan error, 1)
	go func() { served <- gs.Serve(grpcLis) }()
	select {
	case err := <-served:
		lis.Close()
		_ = hsrv.Close()
		gs.Stop() // ends the stream workers too
		close(s.stopped)
		rest.abort()
		return fmt.Errorf("serve: %w", err)
	case <-rest.failed():
		lis.Close()
		_ = hsrv.Close()
		gs.Stop()
		<-served
		close(s.stopped)
		rest.abort()
		return fmt.Errorf("REST: %w", rest.err)
	case <-ctx.Done():
	}

	hs.Shutdown() // every service reports NOT_SERVING from now on
	logger.Info("draining", "delay", cfg.DrainDelay)
	if cfg.DrainDelay > 0 {
		delay := time.NewTimer(cfg.DrainDelay)
		<-delay.C
	}
	lis.Close() // new connections are refused: a clear signal to HAProxy
	_ = hsrv.Close()
	close(s.draining)
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
	close(s.stopped)
	rest.wait()
	return nil
}
