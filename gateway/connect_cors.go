package gateway

import (
	"net/http"
	"slices"
	"strings"
)

// CORS for the gRPC paths, so that a page served from another origin (a
// web application's own site) can call them with a generated gRPC-Web or
// Connect client. Only origins listed in Options.CORSOrigins get CORS
// headers; by default none do, and a browser then keeps other sites' pages
// from reading the answers.

// corsAllowHeaders are the request headers the two protocols' browser
// clients send, and the ones this service reads (the API key, a trace).
var corsAllowHeaders = strings.Join([]string{
	"Content-Type", "Content-Encoding", "Accept-Encoding",
	"Connect-Protocol-Version", "Connect-Timeout-Ms", "Connect-Content-Encoding", "Connect-Accept-Encoding",
	"Grpc-Timeout", "Grpc-Accept-Encoding", "X-Grpc-Web", "X-User-Agent",
	"X-Api-Key", "Traceparent", "Tracestate",
}, ", ")

// corsExposeHeaders are the response headers a page's client must read: a
// gRPC-Web status arrives in headers when there is no body (trailers-only),
// and the request ID is what a user quotes in a report.
var corsExposeHeaders = strings.Join([]string{
	"Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin",
	"Connect-Content-Encoding", "Connect-Accept-Encoding", "Content-Encoding",
	"X-Request-Id",
}, ", ")

// withCORS answers preflights on the gRPC paths for allowed origins and
// marks the answers to their calls as readable by them; everything else
// passes through to next unchanged.
func withCORS(next http.Handler, origins []string) http.Handler {
	if len(origins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if !strings.HasPrefix(r.URL.Path, connectPrefix) || origin == "" || !slices.Contains(origins, origin) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", "POST")
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			// Browsers cap it (Chromium at two hours); it spares a
			// preflight per call.
			h.Set("Access-Control-Max-Age", "7200")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		next.ServeHTTP(w, r)
	})
}
