package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// send makes one request of the gateway at ts and returns the answer with
// its body read.
func send(t *testing.T, ts *httptest.Server, method, target, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, ts.URL+target, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, b
}

// TestAllow: a method a path does not answer to is 405 with the methods it
// does in Allow, whether the path is the runtime's (the API, /healthz) or
// the site's (the page, its files, the OpenAPI document); a path nothing
// serves is 404 without Allow.
func TestAllow(t *testing.T) {
	ts, _ := serveGateway(t)
	for _, tt := range []struct {
		method, target string
		status         int
		allow          string
	}{
		{"PUT", "/v1/codename", 405, "GET, POST"},
		{"OPTIONS", "/v1/codename", 405, "GET, POST"},
		{"HEAD", "/v1/codename", 405, "GET, POST"},
		{"DELETE", "/v1/codenames:stream", 405, "GET, POST"},
		{"POST", "/v1/categories", 405, "GET"},
		{"POST", "/healthz", 405, "GET"},
		{"POST", "/openapi.json", 405, "GET, HEAD"},
		{"OPTIONS", "/", 405, "GET, HEAD"},
		{"PUT", "/app.js", 405, "GET, HEAD"},
		{"POST", "/nope", 404, ""},
		{"GET", "/v1/nope", 404, ""},
		{"POST", "/index.html", 404, ""},
	} {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			resp, body := send(t, ts, tt.method, tt.target, "")
			if resp.StatusCode != tt.status || resp.Header.Get("Allow") != tt.allow {
				t.Errorf("%d with Allow %q, want %d with Allow %q; body %s", resp.StatusCode, resp.Header.Get("Allow"), tt.status, tt.allow, body)
			}
			if tt.status == 405 && tt.method != "HEAD" {
				want := `{"code":12,"message":"method ` + tt.method + ` is not allowed on ` + tt.target + ` (allowed: ` + tt.allow + `)","details":[]}`
				if string(body) != want {
					t.Errorf("body %s, want %s", body, want)
				}
			}
		})
	}
}

// TestUnknownQueryParameters: a query parameter the route does not read is
// a 400 that names it, as an unknown JSON field is; the parameters each
// route reads (those of the request message where no body carries it,
// the stream's category, /healthz's service) keep working.
func TestUnknownQueryParameters(t *testing.T) {
	ts, _ := serveGateway(t)
	for _, tt := range []struct {
		name, method, target, body string
		header                     []string
		status                     int
		golden                     string
		message                    string
	}{
		{name: "typo", method: "GET", target: "/v1/codename?categroy=space", status: 400, golden: "unknown_query_parameter"},
		{name: "beside a known one", method: "GET", target: "/v1/codename?category=space&debug=1", status: 400,
			message: `unknown query parameter \"debug\": GET /v1/codename takes only category`},
		{name: "empty name", method: "GET", target: "/v1/codename?=space", status: 400, message: `unknown query parameter \"\": GET /v1/codename takes only category`},
		{name: "malformed", method: "GET", target: "/v1/codename?category=space;x=1", status: 400, message: "query is malformed: invalid semicolon separator in query"},
		{name: "on a body route", method: "POST", target: "/v1/codename?category=space", body: `{}`, status: 400,
			message: `unknown query parameter \"category\": POST /v1/codename takes no query parameters`},
		{name: "on the request stream", method: "POST", target: "/v1/codenames:stream?category=space", body: `{}`, status: 400,
			message: `unknown query parameter \"category\": POST /v1/codenames:stream takes no query parameters`},
		{name: "on categories", method: "GET", target: "/v1/categories?all=1", status: 400,
			message: `unknown query parameter \"all\": GET /v1/categories takes no query parameters`},
		{name: "on health", method: "GET", target: "/healthz?services=x", status: 400,
			message: `unknown query parameter \"services\": GET /healthz takes only service`},
		{name: "on the event stream", method: "GET", target: "/v1/codenames:stream?categroy=space", header: []string{"Accept", "text/event-stream"}, status: 400,
			message: `unknown query parameter \"categroy\": GET /v1/codenames:stream takes only category`},
		{name: "category", method: "GET", target: "/v1/codename?category=space", status: 200},
		{name: "health's service", method: "GET", target: "/healthz?service=codename.v1.CodenameCreator", status: 200},
		{name: "no query at all", method: "GET", target: "/v1/categories", status: 200},
		{name: "the page ignores queries", method: "GET", target: "/?utm_source=x", status: 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := send(t, ts, tt.method, tt.target, tt.body, tt.header...)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			switch {
			case tt.golden != "":
				checkGolden(t, tt.golden, body)
			case tt.message != "":
				if want := `{"code":3,"message":"` + tt.message + `","details":[]}`; string(body) != want {
					t.Errorf("body %s, want %s", body, want)
				}
			}
		})
	}
	t.Run("event stream with its category", func(t *testing.T) {
		s := openSSE(t, ts, "category=science")
		s.checkStart()
		if c := nextCategory(t, s); c != "science" {
			t.Errorf("first codename of %q, want science", c)
		}
	})
	t.Run("WebSocket with the stream's category", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
		defer cancel()
		conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/v1/codenames:stream?category=space", &websocket.DialOptions{HTTPClient: ts.Client()})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		_ = conn.Close(websocket.StatusNormalClosure, "")
	})
}

// TestJSONIsCompactAndStable: the same request twice gets the same bytes,
// compact JSON (no space outside strings, no newline), whichever spacing
// protojson picked for this build.
func TestJSONIsCompactAndStable(t *testing.T) {
	ts, _ := serveGateway(t)
	for _, tt := range []struct {
		method, target, body string
		want                 string // "" for an answer that differs each time (a codename)
	}{
		{"GET", "/v1/categories", "", `{"categories":["animals","science","space"],"defaultCategory":"animals"}`},
		{"GET", "/healthz", "", `{"status":"SERVING"}`},
		{"GET", "/v1/codename?category=dragons", "", `{"code":3,"message":"unknown category \"dragons\": valid categories are animals, science, space","details":[]}`},
		{"PUT", "/v1/codename", "", `{"code":12,"message":"method PUT is not allowed on /v1/codename (allowed: GET, POST)","details":[]}`},
		{"GET", "/nope", "", `{"code":5,"message":"Not Found","details":[]}`},
		{"POST", "/v1/codename", `{ "category" : "space" }`, ""},
		{"GET", "/v1/codename", "", ""},
	} {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			_, first := send(t, ts, tt.method, tt.target, tt.body)
			_, second := send(t, ts, tt.method, tt.target, tt.body)
			var compact bytes.Buffer
			if err := json.Compact(&compact, first); err != nil || !bytes.Equal(compact.Bytes(), first) {
				t.Errorf("body %q is not compact JSON (%v)", first, err)
			}
			if tt.want == "" {
				return
			}
			if string(first) != tt.want || string(second) != tt.want {
				t.Errorf("bodies %q and %q, want %q both times", first, second, tt.want)
			}
		})
	}
}
