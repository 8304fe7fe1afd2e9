package server

import (
	"log/slog"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"

	"github.com/codename-gateway/codename-gateway/internal/telemetry"
)

// streamWorkers is how many calls at a time run on reused goroutines: as
// many as a busy server has in flight (64 in bench/'s unary load). An idle
// worker keeps the stack it grew, a few KB to a few tens of KB; grpc-go
// replaces each worker after 65536 calls, which lets an overgrown one go.
const streamWorkers = 64

// The fixed flow-control windows of every connection (see newServer).
const (
	streamWindow = 64 << 10
	connWindow   = 1 << 20
)

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

// newServer builds the grpc.Server of cfg: its connection limits, its
// interceptors (trace, metrics, call log, panic recovery, in that order),
// the metrics they record and the services it serves.
func newServer(cfg Config) *grpcServer {
	cfg = withDefaults(cfg)
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
		// Fixed flow-control windows instead of grpc-go's estimate of
		// the link's bandwidth-delay product, which pings the client on
		// the first request data after each answer to its last ping: on
		// calls one after another, a ping and its ack (a write and a read
		// more) for every call, to size windows for bulk data that
		// codenames never are. The stream window is grpc-go's initial
		// one; the connection's is larger, for a gateway's or HAProxy's
		// many streams on one connection. Measured with
		// BenchmarkRESTUnary/separate: 4 -> 2 ping frames parsed and
		// 290 -> 284 allocations per call (the other two pings are the
		// gateway's own, cmd/codename-gateway's dial options).
		grpc.StaticStreamWindowSize(streamWindow),
		grpc.StaticConnWindowSize(connWindow),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(
			calls.StreamServerInterceptor(),
			callLogger{logger}.stream,
			recovery.StreamServerInterceptor(recovered),
		),
	)...)
	draining := make(chan struct{})
	reg := &recordingRegistrar{gs: gs, methods: map[string]unaryMethod{}}
	hs := registerServices(reg, cfg.StreamInterval, draining, openStreams)
	calls.InitializeMetrics(gs)
	return &grpcServer{gs: gs, cfg: cfg, logger: logger, health: hs, reg: metrics, draining: draining, stopped: make(chan struct{}),
		unaryInterceptors: unary, unaryMethods: reg.methods}
}
