package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/codename-gateway/codename-gateway/gateway"
	"github.com/codename-gateway/codename-gateway/internal/poll"
	"github.com/codename-gateway/codename-gateway/server/codename"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// checkGolden compares a JSON body, byte for byte, with
// testdata/NAME.golden.json, or rewrites that file under -update. The
// gateway's JSON is compact and the same from build to build (protojson's
// random spacing is compacted away), so the bytes are what clients see.
func checkGolden(t *testing.T, name string, body []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./gateway -update creates it)", err)
	}
	if !bytes.Equal(body, want) {
		t.Errorf("body differs from %s (go test ./gateway -update rewrites it):\ngot:  %q\nwant: %q", path, body, want)
	}
}

// apiError is the gateway's JSON error shape, a google.rpc.Status.
type apiError struct {
	Code    int               `json:"code"`
	Message string            `json:"message"`
	Details []json.RawMessage `json:"details"`
}

func TestREST(t *testing.T) {
	ts, _ := serveGateway(t)

	tests := []struct {
		name     string
		method   string
		target   string
		body     string
		wantCode int
		wantType string // media type of the response
		// One of these checks the body.
		wantCategory string                          // {"name": ...} of this category
		golden       string                          // testdata/GOLDEN.golden.json
		check        func(t *testing.T, body []byte) // anything else
	}{
		{name: "get with category", method: "GET", target: "/v1/codename?category=science",
			wantCode: 200, wantType: "application/json", wantCategory: "science"},
		{name: "get is case-insensitive", method: "GET", target: "/v1/codename?category=SPACE",
			wantCode: 200, wantType: "application/json", wantCategory: "space"},
		{name: "get without category is the default", method: "GET", target: "/v1/codename",
			wantCode: 200, wantType: "application/json", wantCategory: "animals"},
		{name: "post json", method: "POST", target: "/v1/codename", body: `{"category":"space"}`,
			wantCode: 200, wantType: "application/json", wantCategory: "space"},
		{name: "post json with surrounding space", method: "POST", target: "/v1/codename", body: " \n{\"category\": \"science\"}\n ",
			wantCode: 200, wantType: "application/json", wantCategory: "science"},
		{name: "post empty body is the default", method: "POST", target: "/v1/codename", body: "",
			wantCode: 200, wantType: "application/json", wantCategory: "animals"},
		{name: "get unknown category", method: "GET", target: "/v1/codename?category=plants",
			wantCode: 400, wantType: "application/json", golden: "unknown_category"},
		{name: "post unknown category", method: "POST", target: "/v1/codename", body: `{"category":"plants"}`,
			wantCode: 400, wantType: "application/json", golden: "unknown_category"},
		{name: "malformed json", method: "POST", target: "/v1/codename", body: `{"category":`,
			wantCode: 400, wantType: "application/json", golden: "malformed_json"},
		{name: "unknown field", method: "POST", target: "/v1/codename", body: `{"categroy":"space"}`,
			// protojson puts a space or a no-break space after "proto:",
			// a different choice in each build; the gateway's is a space.
			wantCode: 400, wantType: "application/json", golden: "unknown_field"},
		{name: "trailing junk", method: "POST", target: "/v1/codename", body: `{"category":"space"} garbage`,
			wantCode: 400, wantType: "application/json", golden: "trailing_junk"},
		{name: "two objects", method: "POST", target: "/v1/codename", body: `{"category":"space"}{"category":"animals"}`,
			wantCode: 400, wantType: "application/json", golden: "trailing_junk"},
		{name: "body at the limit", method: "POST", target: "/v1/codename",
			body:     `{"category":"space"` + strings.Repeat(" ", maxBodyBytes-len(`{"category":"space"}`)) + `}`,
			wantCode: 200, wantType: "application/json", wantCategory: "space"},
		{name: "body over the limit", method: "POST", target: "/v1/codename",
			body:     `{"category":"space"` + strings.Repeat(" ", maxBodyBytes-len(`{"category":"space"}`)+1) + `}`,
			wantCode: 413, wantType: "application/json", golden: "body_too_large"},
		{name: "wrong method", method: "PUT", target: "/v1/codename", body: `{"category":"space"}`,
			wantCode: 405, wantType: "application/json", golden: "method_not_allowed"},
		{name: "wrong method on the stream route", method: "PUT", target: "/v1/codenames:stream",
			wantCode: 405, wantType: "application/json", golden: "stream_method_not_allowed"},
		{name: "unknown path", method: "GET", target: "/nope",
			wantCode: 404, wantType: "application/json", golden: "not_found"},
		{name: "stream get without upgrade or event-stream", method: "GET", target: "/v1/codenames:stream",
			wantCode: 406, wantType: "application/json", golden: "stream_not_acceptable"},
		{name: "metrics without a registry", method: "GET", target: "/metrics",
			wantCode: 404, wantType: "application/json", golden: "not_found"},
		{name: "healthz", method: "GET", target: "/healthz",
			wantCode: 200, wantType: "application/json", golden: "healthz"},
		{name: "openapi", method: "GET", target: "/openapi.json",
			wantCode: 200, wantType: "application/json", check: func(t *testing.T, body []byte) {
				var doc struct {
					Paths map[string]json.RawMessage `json:"paths"`
				}
				if err := json.Unmarshal(body, &doc); err != nil {
					t.Fatalf("OpenAPI document is not JSON: %v", err)
				}
				for _, p := range []string{"/v1/codename", "/v1/codenames:stream"} {
					if _, ok := doc.Paths[p]; !ok {
						t.Errorf("OpenAPI paths lack %q", p)
					}
				}
			}},
		{name: "web page", method: "GET", target: "/",
			wantCode: 200, wantType: "text/html", check: func(t *testing.T, body []byte) {
				if !bytes.Contains(bytes.ToLower(body), []byte("<html")) {
					t.Errorf("page is not HTML:\n%.200s", body)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
			defer cancel()
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequestWithContext(ctx, tt.method, ts.URL+tt.target, body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil {
				t.Fatalf("read body: %v", err)
			}
			if resp.StatusCode != tt.wantCode {
				t.Errorf("status = %d, want %d; body:\n%s", resp.StatusCode, tt.wantCode, got)
			}
			if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != tt.wantType {
				t.Errorf("content type = %q, want %q", mt, tt.wantType)
			}
			if tt.wantCategory != "" {
				var res struct {
					Name string `json:"name"`
				}
				if err := json.Unmarshal(got, &res); err != nil {
					t.Fatalf("body is not JSON: %v\n%s", err, got)
				}
				if cat := codename.CategoryOf(res.Name); cat != tt.wantCategory {
					t.Errorf("got name %q from category %q, want category %q", res.Name, cat, tt.wantCategory)
				}
			}
			if tt.golden != "" {
				checkGolden(t, tt.golden, got)
			}
			if tt.check != nil {
				tt.check(t, got)
			}
		})
	}
}

// TestHealthzFollowsServer checks that /healthz asks the gRPC server, so it
// turns unhealthy soon after the server shuts down: the answer is cached
// for 250 ms.
func TestHealthzFollowsServer(t *testing.T) {
	ts, shutdown := serveGateway(t)
	get := func() int {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/healthz", nil)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(); got != http.StatusOK {
		t.Fatalf("healthz = %d while serving, want 200", got)
	}
	shutdown()
	var got int
	if _, ok := poll.Until(time.Second, func() bool {
		got = get()
		return got == http.StatusServiceUnavailable
	}); !ok {
		t.Fatalf("healthz = %d a second after the server shut down, want 503", got)
	}
}

func TestNewDefaultBodyLimit(t *testing.T) {
	h := dialGateway(t, "passthrough:///unused", gateway.Options{})
	// A body one byte over the default limit is refused before any call
	// is made on the connection, which goes nowhere.
	body := `{"category":"space"` + strings.Repeat(" ", gateway.DefaultMaxBodyBytes-len(`{"category":"space"}`)+1) + `}`
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), "POST", "/v1/codename", strings.NewReader(body)))
	if got, want := rec.Code, http.StatusRequestEntityTooLarge; got != want {
		t.Errorf("status = %d, want %d", got, want)
	}
}

// TestOversizedBodyIsDrained: before the 413 goes out, the gateway reads
// the rest of a body that is over the limit, up to 256 KiB more, so that
// HTTP/2 does not reset the stream while the proxy is still sending it; a
// body bigger than that is left unread beyond the bound.
func TestOversizedBodyIsDrained(t *testing.T) {
	h := dialGateway(t, "passthrough:///unused", gateway.Options{MaxBodyBytes: 1 << 10})
	for _, tt := range []struct {
		name       string
		size       int
		wantUnread int
	}{
		{"a little over", 70 << 10, 0},
		{"far over", 1 << 20, 1<<20 - (1<<10 + 1) - 256<<10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := strings.NewReader(`"` + strings.Repeat("a", tt.size-1))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), "POST", "/v1/codename", body))
			if rec.Code != http.StatusRequestEntityTooLarge {
				t.Errorf("status = %d, want 413", rec.Code)
			}
			if got := body.Len(); got != tt.wantUnread {
				t.Errorf("%d bytes of the body left unread, want %d", got, tt.wantUnread)
			}
		})
	}
}

// TestUnreachableServerIsNotDescribed: when the gRPC server cannot be
// reached, REST callers get 503 without grpc-go's description of the dial,
// which names internal addresses, also when grpc-go's retries wrap it.
func TestUnreachableServerIsNotDescribed(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now
	for _, tt := range []struct {
		name string
		opts []grpc.DialOption
	}{
		{"no retries", nil},
		{"retried", []grpc.DialOption{grpc.WithDefaultServiceConfig(`{"methodConfig":[{"name":[{}],"retryPolicy":{"maxAttempts":3,"initialBackoff":"0.01s","maxBackoff":"0.01s","backoffMultiplier":1,"retryableStatusCodes":["UNAVAILABLE"]}}]}`)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := dialGateway(t, "passthrough:///"+addr, gateway.Options{}, tt.opts...)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), "GET", "/v1/codename", nil))
			if rec.Code != http.StatusServiceUnavailable {
				t.Errorf("status = %d, want 503", rec.Code)
			}
			if body := rec.Body.String(); body != `{"code":14,"message":"the codename service cannot be reached: retry shortly","details":[]}` {
				t.Errorf("body = %s, want code 14 without the dial's details", body)
			}
		})
	}
}
