package gateway

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/web"
)

// routes adds the REST routes to the runtime mux and returns what answers
// every path: the REST routes, /healthz and JSON 404s for anything unknown
// (the runtime mux); on the gRPC paths, gRPC-Web and Connect calls
// (connect.go); the OpenAPI document; the web page and its files.
func (g *gateway) routes(ctx context.Context) (http.Handler, error) {
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

	site := http.NewServeMux()
	g.site = site
	rest := browserRPCOr(newConnectHandler(g.client, g.streams, g.maxBodyBytes), g.mux)
	site.Handle("/", rest)
	site.HandleFunc("GET /openapi.json", serveOpenAPI)
	files := http.FileServerFS(web.Files)
	site.Handle("GET /{$}", files)
	err := fs.WalkDir(web.Files, ".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && path != "index.html" {
			site.Handle("GET /"+path, files)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list web files: %w", err)
	}
	return restFirst(site, rest), nil
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
