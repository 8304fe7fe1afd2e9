package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRESTRoutingKeepsTheSiteRules: REST calls skip the site's mux only
// when it would have sent them to the runtime unchanged; a path it would
// clean is still redirected, and the site's own routes still answer.
func TestRESTRoutingKeepsTheSiteRules(t *testing.T) {
	h, _ := startGateway(t)
	for _, tt := range []struct {
		method, target string
		wantCode       int
		wantLocation   string
	}{
		{http.MethodGet, "/v1/codename?category=space", http.StatusOK, ""},
		{http.MethodGet, "/v1//codename?category=space", http.StatusTemporaryRedirect, "/v1/codename?category=space"},
		{http.MethodGet, "/v1/x/../codename?category=space", http.StatusTemporaryRedirect, "/v1/codename?category=space"},
		{http.MethodGet, "/v1/nothing", http.StatusNotFound, ""},
		{http.MethodGet, "/openapi.json", http.StatusOK, ""},
	} {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.target, nil))
			if w.Code != tt.wantCode || w.Header().Get("Location") != tt.wantLocation {
				t.Errorf("got %d, Location %q; want %d, Location %q", w.Code, w.Header().Get("Location"), tt.wantCode, tt.wantLocation)
			}
		})
	}
}
