package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// specialPaths are the paths that some rule of the edge treats apart: the
// backends' internal metrics, health (Check exempt from key and limits,
// Watch not), the streams (their own pools), the unary gRPC calls
// (buffered and retried), the legacy names, and an ordinary REST route.
var specialPaths = []string{
	"/metrics",
	"/healthz",
	"/v1/codenames:stream",
	"/v1/codename",
	"/grpc.health.v1.Health/Check",
	"/grpc.health.v1.Health/Watch",
	"/codename.v1.CodenameCreator/GetCodename",
	"/codename.v1.CodenameCreator/ListCategories",
	"/codename.v1.CodenameCreator/KeepGettingCodenames",
	"/CodenameCreator/GetCodename",
}

// pathVariants spells p in the ways a backend may read as p but a rule on
// the raw path would not: each character percent-encoded (upper and lower
// hex), each slash encoded, dot segments and empty segments before each
// segment, a trailing slash, and path parameters.
func pathVariants(p string) []string {
	var v []string
	for i := 1; i < len(p); i++ {
		v = append(v, p[:i]+fmt.Sprintf("%%%02X", p[i])+p[i+1:], p[:i]+fmt.Sprintf("%%%02x", p[i])+p[i+1:])
		if p[i] == '/' {
			v = append(v, p[:i]+"/."+p[i:], p[:i]+"/x/.."+p[i:], p[:i]+"/"+p[i:], p[:i]+";"+p[i:])
		}
	}
	v = append(v, "/."+p, "/x/.."+p, "/"+p, p+"/", p+"/.", p+"/..", p+";", p+";x=1", "/%2e"+p, "/%2E%2E"+p)
	slices.Sort(v)
	return slices.Compact(v)
}

// TestCanonicalPaths sends every variant of every special path over
// HTTP/1.1 and HTTP/2: each must be refused by the edge with a JSON 400
// (code 3, INVALID_ARGUMENT), so that no backend ever reads a path that
// the edge's rules read differently (finding 3 of issue 10: /%6detrics
// returned the gateway's metrics, /%761/codenames:stream was served as a
// stream through the unary pool).
func TestCanonicalPaths(t *testing.T) {
	s := shared(t)
	h2, err := dialH2Raw("", s.cfg.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	n := 0
	for _, p := range specialPaths {
		for _, v := range pathVariants(p) {
			n++
			a1, err := h1Raw(s.cfg.HTTPAddr, "GET "+v+" HTTP/1.1\r\nHost: localhost\r\n\r\n")
			checkRefusedAsMalformed(t, "HTTP/1.1 "+v, a1, err)
			a2, err := h2.do("GET", v)
			checkRefusedAsMalformed(t, "HTTP/2 "+v, a2, err)
			if err != nil { // the connection may be gone: go on with a new one
				h2.Close()
				if h2, err = dialH2Raw("", s.cfg.HTTPAddr); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	t.Logf("%d variants of %d paths refused over HTTP/1.1 and HTTP/2", n, len(specialPaths))

	// Absolute-form is read by its path, as the backends read it: the
	// canonical path is served, the internal one is not.
	if a, err := h1Raw(s.cfg.HTTPAddr, "GET http://localhost/v1/codename?category=space HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil || a.status != http.StatusOK {
		t.Errorf("absolute-form GET /v1/codename: %+v %v, want 200", a, err)
	}
	if a, err := h1Raw(s.cfg.HTTPAddr, "GET http://localhost/metrics HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil || a.status != http.StatusNotFound || strings.Contains(a.body, "# HELP") {
		t.Errorf("absolute-form GET /metrics: %+v %v, want a 404 without metrics", a, err)
	}
	// Another case is another path: the backends match case-sensitively,
	// so it is a plain 404, never the metrics.
	for _, v := range []string{"/METRICS", "/Metrics", "/V1/codenames:stream"} {
		if a, err := h1Raw(s.cfg.HTTPAddr, "GET "+v+" HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil || a.status != http.StatusNotFound || strings.Contains(a.body, "# HELP") {
			t.Errorf("GET %s: %+v %v, want a 404", v, a, err)
		}
	}
	// Methods the API does not answer never reach a backend.
	for _, m := range []string{"FOO", "PUT", "DELETE", "TRACE", "get"} {
		if a, err := h1Raw(s.cfg.HTTPAddr, m+" /v1/codename HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"); err != nil || a.status != http.StatusMethodNotAllowed || !strings.Contains(a.body, `"code":12`) {
			t.Errorf("%s /v1/codename: %+v %v, want a JSON 405", m, a, err)
		}
	}
}

func checkRefusedAsMalformed(t *testing.T, what string, a rawAnswer, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if a.status != http.StatusBadRequest || !strings.Contains(a.body, `"code":3`) || !strings.Contains(a.body, "malformed") {
		t.Errorf("%s: %d %q, want the edge's JSON 400", what, a.status, a.body)
	}
}

// TestContentTypeReadWhole: the content type that routes a request is the
// whole header, given once (finding 4 of issue 10: "application/json,
// application/grpc" was routed as gRPC, since req.hdr() splits on commas).
func TestContentTypeReadWhole(t *testing.T) {
	s := shared(t)
	body := `{"category":"space"}`
	post := func(contentTypes ...string) (rawAnswer, error) {
		req := "POST /v1/codename HTTP/1.1\r\nHost: localhost\r\n"
		for _, ct := range contentTypes {
			req += "Content-Type: " + ct + "\r\n"
		}
		return h1Raw(s.cfg.HTTPAddr, req+fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body))
	}
	// Comma-joined: not gRPC, so the gateway answers it as JSON.
	if a, err := post("application/json, application/grpc"); err != nil || a.status != http.StatusOK || !strings.Contains(a.body, `"name"`) {
		t.Errorf("comma-joined content type: %+v %v, want the gateway's 200", a, err)
	}
	// Twice: ambiguous, refused.
	for _, cts := range [][]string{{"application/json", "application/grpc"}, {"application/grpc", "application/json"}, {"application/json", "application/json"}} {
		a, err := post(cts...)
		checkRefusedAsMalformed(t, fmt.Sprintf("content types %q", cts), a, err)
	}
	// Control bytes in a header value: refused at the edge, as a 400,
	// rather than a 502 from the backend.
	a, err := post("application/json\x01")
	checkRefusedAsMalformed(t, "content type with a control byte", a, err)
}

// TestDuplicatedUpgradeRefused: a request with more than one Upgrade
// header is ambiguous and refused at the edge, as two content types are.
// HAProxy 3.x settles some cases itself before any rule sees them, and
// the request is then what 3.x made of it, the same to the edge and to the
// gateway: of `websocket` and another protocol it keeps only the
// `websocket` header (a WebSocket), and it drops other protocols named
// twice (an ordinary GET, answered 406). (Before the WebSocket had a pool of HTTP/1.1 connections of
// its own, 3.0 broke the HTTP/2 connection to the gateway that other
// clients' streams shared with such a request: TestHostileRequestsDoNotHurtOthers.)
func TestDuplicatedUpgradeRefused(t *testing.T) {
	s := shared(t)
	kept := haproxyUnderTest(t).atLeast(3, 0)
	for _, tt := range []struct {
		upgrades []string
		// on3 is the status 3.x answers with; 400 is the edge's refusal.
		on3 int
	}{
		{[]string{"websocket", "h2c"}, http.StatusSwitchingProtocols},
		{[]string{"h2c", "websocket"}, http.StatusSwitchingProtocols},
		{[]string{"websocket", "websocket"}, http.StatusBadRequest},
		{[]string{"h2c", "h2c"}, http.StatusNotAcceptable},
	} {
		req := "GET /v1/codenames:stream HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n"
		for _, u := range tt.upgrades {
			req += "Upgrade: " + u + "\r\n"
		}
		a, err := h1Raw(s.cfg.HTTPAddr, req+"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		what := fmt.Sprintf("upgrades %q", tt.upgrades)
		if kept && tt.on3 != http.StatusBadRequest {
			if err != nil || a.status != tt.on3 {
				t.Errorf("%s: %+v %v, want %d, as HAProxy 3.x makes of it", what, a, err, tt.on3)
			}
			continue
		}
		checkRefusedAsMalformed(t, what, a, err)
	}
}
