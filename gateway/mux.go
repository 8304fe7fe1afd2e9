package gateway

import (
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
)

// apiKeyIDHeader carries the redacted API key that HAProxy adds once it has
// checked the caller's key; the gateway logs it and passes it on.
const apiKeyIDHeader = "x-api-key-id"

// newMux builds the grpc-gateway runtime mux with every option the gateway
// sets, each for the reason above it. Its routes are added by routes.
func (g *gateway) newMux() *runtime.ServeMux {
	return runtime.NewServeMux(
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

// outgoingHeader passes gRPC response metadata on as Grpc-Metadata-*
// headers, but for the gRPC transport's content-type.
func outgoingHeader(key string) (string, bool) {
	if key == "content-type" {
		return "", false
	}
	return runtime.MetadataHeaderPrefix + key, true
}
