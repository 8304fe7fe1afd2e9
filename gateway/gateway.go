// Package gateway is the REST face of CodenameCreator: an http.Handler built
// on the grpc-gateway v2 runtime that turns JSON requests into gRPC calls on
// a connection it is given, streams codenames back as newline-delimited JSON,
// answers /healthz from grpc.health.v1, serves the OpenAPI document and
// the web page, and answers gRPC-Web and Connect calls on the gRPC paths.
package gateway

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/web"
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

// apiKeyIDHeader carries the redacted API key that HAProxy adds once it has
// checked the caller's key; the gateway logs it and passes it on.
const apiKeyIDHeader = "x-api-key-id"

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
	g.mux = runtime.NewServeMux(
		// One JSON dialect for every content type: field names as in the
		// proto's JSON mapping, and unknown fields refused (DiscardUnknown
		// off) so that a typo such as {"categroy": ...} is a 400, not a
		// silent default. Output compact, the same bytes from every
		// build (see compactJSON).
		runtime.WithMarshalerOption(runtime.MIMEWildcard, compactJSON{&runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}}),
		// /healthz asks the gRPC server's grpc.health.v1 service, so it
		// is healthy only when the whole path to the server is; through
		// a cache, so that a flood of /healthz is not a flood of calls.
		runtime.WithHealthzEndpoint(g.health),
		// Who called (as HAProxy identified them) and the request ID
		// travel on to the gRPC server, beside the headers the runtime
		// forwards by default.
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		// gRPC response metadata reaches REST clients as Grpc-Metadata-*
		// headers, except the gRPC transport's own content-type, which
		// would only confuse them.
		runtime.WithOutgoingHeaderMatcher(outgoingHeader),
		// A wrong method is 405 with an Allow header and the usual JSON
		// error body, instead of the runtime's default 501.
		runtime.WithRoutingErrorHandler(g.routingErrorHandler),
		// Errors, unary or mid-stream, keep the runtime's JSON shape, but
		// say nothing of internal addresses, and stay UTF-8 even when they
		// quote what the client sent (a message that is not UTF-8 cannot
		// be JSON: the runtime would answer 500).
		runtime.WithErrorHandler(errorHandler),
		runtime.WithStreamErrorHandler(streamErrorHandler),
		// No X-HTTP-Method-Override: behind a proxy that applies policy by
		// method, the method a request arrives with is the one it gets.
		runtime.WithDisablePathLengthFallback(),
		// Unary bodies must be one JSON value of bounded size, and
		// queries UTF-8 and of parameters the route reads. The route
		// probe, which finds what a 405's Allow lists, goes first.
		runtime.WithMiddlewares(routeProbe, g.checkUnaryBody, g.checkQuery),
	)
	if err := codenamev1.RegisterCodenameCreatorHandlerClient(ctx, g.mux, g.client); err != nil {
		return nil, fmt.Errorf("register REST handlers: %w", err)
	}
	// Registered after the generated handlers, so it replaces theirs for
	// this route: the generated one drops request-stream decode errors.
	if err := g.mux.HandlePath(http.MethodPost, streamPattern, g.keepGettingCodenames); err != nil {
		return nil, fmt.Errorf("register stream handler: %w", err)
	}
	// The same stream for browsers: a WebSocket, or Server-Sent Events.
	if err := g.mux.HandlePath(http.MethodGet, streamPattern, g.streamForBrowsers); err != nil {
		return nil, fmt.Errorf("register browser stream handler: %w", err)
	}

	root := http.NewServeMux()
	g.site = root
	// REST routes, /healthz, and JSON 404s for anything unknown; and on the
	// gRPC paths, gRPC-Web and Connect calls (gateway/connect.go).
	rest := browserRPCOr(newConnectHandler(g.client, g.streams, opts.MaxBodyBytes), g.mux)
	root.Handle("/", rest)
	root.HandleFunc("GET /openapi.json", serveOpenAPI)
	site := http.FileServerFS(web.Files)
	root.Handle("GET /{$}", site)
	err := fs.WalkDir(web.Files, ".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && path != "index.html" {
			root.Handle("GET /"+path, site)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list web files: %w", err)
	}
	logger, reg := opts.Logger, opts.Metrics
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry() // counted, but served nowhere
	}
	return &handler{observe(withCORS(restFirst(root, rest), opts.CORSOrigins), logger, reg), g}, nil
}

// restFirst sends a REST call, a clean path under /v1/, straight to rest,
// where the site's catch-all "/" would send it (the site has no pattern of
// its own under /v1/), without the site's mux matching it against every
// pattern first: a few allocations and a good part of the routing's CPU
// per call. Anything else, CONNECT and paths that the site's mux would
// clean and redirect included, is the site's to route.
func restFirst(site *http.ServeMux, rest http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		if r.Method != http.MethodConnect && strings.HasPrefix(p, "/v1/") && path.Clean(p) == p {
			rest.ServeHTTP(w, r)
			return
		}
		site.ServeHTTP(w, r)
	})
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

// streamForBrowsers picks the stream's browser transport from the headers.
func (g *gateway) streamForBrowsers(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	switch {
	case strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
		g.webSocket(w, r)
	case strings.Contains(r.Header.Get("Accept"), "text/event-stream"):
		g.serverSentEvents(w, r)
	default:
		g.httpError(w, r, http.StatusNotAcceptable, status.Error(codes.InvalidArgument,
			"GET "+streamPattern+" needs a WebSocket upgrade or Accept: text/event-stream; or POST a stream of JSON requests"))
	}
}

// incomingHeader passes on, beside the runtime's defaults, who called and
// the request ID (HAProxy sets x-request-id to the request's trace ID). The
// trace itself goes on as a traceparent that the connection's
// telemetry.DialOptions write from the request's context; a client's
// Grpc-Metadata-Traceparent (or tracestate, baggage) would reach the
// server beside it, or in its place, so it stays behind.
func incomingHeader(key string) (string, bool) {
	switch k := strings.ToLower(key); k {
	case apiKeyIDHeader, "x-request-id":
		return k, true
	case "grpc-metadata-traceparent", "grpc-metadata-tracestate", "grpc-metadata-baggage":
		return "", false
	}
	return runtime.DefaultHeaderMatcher(key)
}

func outgoingHeader(key string) (string, bool) {
	if key == "content-type" {
		return "", false
	}
	return runtime.MetadataHeaderPrefix + key, true
}
