// Package gateway is the REST face of CodenameCreator: an http.Handler built
// on the grpc-gateway v2 runtime that turns JSON requests into gRPC calls on
// a connection it is given, streams codenames back as newline-delimited JSON,
// answers /healthz from grpc.health.v1, serves the OpenAPI document and
// the web page, and answers gRPC-Web and Connect calls on the gRPC paths.
//
// Where to look: mux.go holds every runtime mux option, routes.go what
// answers which path, transports.go which transport answers a request,
// observe.go the log line, metrics and trace of each request.
package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// DefaultMaxBodyBytes bounds a unary request body and each message of a
// streaming request body. A NameRequest is a few dozen bytes; 64 KiB leaves
// room for future fields without letting one client pin much memory.
const DefaultMaxBodyBytes = 64 << 10

// Options tunes the gateway. The zero value is usable.
type Options struct {
	// MaxBodyBytes bounds a unary request body and each JSON message of a
	// streaming request body; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// CallTimeout bounds each unary call to the gRPC server, unless the
	// client asks for less with a Grpc-Timeout header; streams are not
	// bounded. Zero means DefaultCallTimeout, less than zero no bound.
	CallTimeout time.Duration
	// SSEHeartbeat is how long a Server-Sent Events stream may go without
	// writing before the gateway writes a comment line, which EventSource
	// ignores. A write is the only way to learn that the client went away
	// behind HAProxy 2.6, which passes a client's close on only once the
	// backend writes; and it keeps idle proxies in between from timing the
	// stream out. Zero means DefaultSSEHeartbeat, less than zero none.
	SSEHeartbeat time.Duration
	// CORSOrigins are the origins (scheme://host[:port], as browsers send
	// them in Origin) whose pages may call the gRPC paths with gRPC-Web
	// or Connect clients. None by default.
	CORSOrigins []string
	// Logger receives one line per request. Nil discards them.
	Logger *slog.Logger
	// Metrics, if not nil, receives the gateway's request metrics. The
	// handler does not serve them: whoever scrapes them does so on an
	// admin listener of its own, which HAProxy never forwards to (a path
	// rule in front of a public port is one percent-encoding away from
	// failing: /%6detrics is /metrics to Go's mux).
	Metrics *prometheus.Registry
}

// New returns the gateway's handler, which calls the gRPC server over conn:
// a *grpc.ClientConn dialed to the servers when the gateway runs as a
// process of its own, or the server's in-process connection when it runs
// inside the server (server.Config.REST). The caller owns conn; ctx bounds
// nothing but the registration itself. Serve drains the handler when it
// shuts down.
func New(ctx context.Context, conn grpc.ClientConnInterface, opts Options) (http.Handler, error) {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.CallTimeout == 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.SSEHeartbeat == 0 {
		opts.SSEHeartbeat = DefaultSSEHeartbeat
	}
	cc := conn
	if opts.CallTimeout > 0 {
		cc = unaryDeadline{conn, opts.CallTimeout}
	}
	g := &gateway{
		client:       codenamev1.NewCodenameCreatorClient(cc),
		health:       newCachedHealth(healthpb.NewHealthClient(conn)),
		streams:      newStreamEnd(),
		maxBodyBytes: opts.MaxBodyBytes,
		queryParams:  queryParams(),
		sseHeartbeat: opts.SSEHeartbeat,
	}
	g.mux = g.newMux()
	routes, err := g.routes(ctx)
	if err != nil {
		return nil, err
	}
	// Outermost, observe logs and counts every answer, preflights included.
	return &handler{observe(withCORS(routes, opts.CORSOrigins), opts.Logger, opts.Metrics), g}, nil
}

// gateway holds what the REST handlers share.
type gateway struct {
	mux          *runtime.ServeMux
	client       codenamev1.CodenameCreatorClient
	health       *cachedHealth
	streams      *streamEnd
	maxBodyBytes int64
	sseHeartbeat time.Duration // none if not positive
	queryParams  routeParams
	site         *http.ServeMux // routes outside the runtime, for Allow
}
