package gateway

import (
	"context"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
)

// allowCandidates are the methods an Allow header may list, in its order.
var allowCandidates = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// probeKey marks a request the gateway sends through its own runtime mux
// to learn whether a route matches: the runtime keeps its routes to itself.
// Only the gateway makes such a context; no client can.
type probeKey struct{}

// probe records whether a probe request reached a route.
type probe struct{ matched bool }

func isProbe(r *http.Request) bool {
	_, ok := r.Context().Value(probeKey{}).(*probe)
	return ok
}

// routeProbe, the outermost middleware, stops a probe at the route it
// matched: nothing of the route runs.
func routeProbe(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if p, ok := r.Context().Value(probeKey{}).(*probe); ok {
			p.matched = true
			return
		}
		next(w, r, params)
	}
}

// allowed lists the methods that r's path answers to, through the runtime's
// routes or the site's (the page, its files, the OpenAPI document): what a
// 405's Allow header must say.
func (g *gateway) allowed(r *http.Request) []string {
	var allow []string
	for _, m := range allowCandidates {
		if g.serves(r, m) {
			allow = append(allow, m)
		}
	}
	return allow
}

// serves reports whether a request like r but with the given method would
// reach a route.
func (g *gateway) serves(r *http.Request, method string) bool {
	p := new(probe)
	pr := r.Clone(context.WithValue(r.Context(), probeKey{}, p))
	pr.Method = method
	pr.Body, pr.ContentLength = http.NoBody, 0
	g.mux.ServeHTTP(discard{}, pr)
	if p.matched {
		return true
	}
	if g.site == nil {
		return false
	}
	// The site's catch-all "/" is the runtime mux itself, asked above.
	_, pattern := g.site.Handler(pr)
	return pattern != "" && pattern != "/"
}

// discard is where a probe's answer goes, should the runtime write one.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
