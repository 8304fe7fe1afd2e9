package gateway

import (
	"mime"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// browserRPCTypes are the content types the connect-go handlers answer:
// gRPC-Web (binary and base64 text) and Connect (unary and streaming, JSON
// and binary). Anything else on the gRPC paths, native gRPC included,
// keeps the answer it had (the runtime's JSON 404): the gateway is no gRPC
// server.
var browserRPCTypes = map[string]bool{
	"application/grpc-web":            true,
	"application/grpc-web+proto":      true,
	"application/grpc-web+json":       true,
	"application/grpc-web-text":       true,
	"application/grpc-web-text+proto": true,
	"application/json":                true,
	"application/proto":               true,
	"application/connect+json":        true,
	"application/connect+proto":       true,
}

// isBrowserRPC tells whether r is a gRPC-Web or Connect call.
func isBrowserRPC(r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, connectPrefix) || r.Method != http.MethodPost {
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && browserRPCTypes[mt]
}

// browserRPCOr sends gRPC-Web and Connect calls to rpc, and everything
// else to next.
func browserRPCOr(rpc, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isBrowserRPC(r) {
			rpc.ServeHTTP(flusher{w}, r)
			return
		}
		next.ServeHTTP(w, r)
	})
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
