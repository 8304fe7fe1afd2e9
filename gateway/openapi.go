package gateway

import (
	"net/http"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// serveOpenAPI serves the OpenAPI 3.1 document of every route the gateway
// answers, so that tools can generate clients from the running system.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(codenamev1.OpenAPI)
}
