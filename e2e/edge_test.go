package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/poll"
)

const testKey = "k3y-Of-The-Test-0123456789"

// TestAPIKey: with a key configured, requests without exactly the right key
// in x-api-key are refused by HAProxy, and never reach a backend, however
// the key is hidden or mangled.
func TestAPIKey(t *testing.T) {
	s := start(t, apiKey(testKey))
	c := transports[1].client(t, s)  // HTTPS, HTTP/2
	h1 := transports[0].client(t, s) // HTTPS, HTTP/1.1: header names as sent

	refused := []struct {
		name        string
		client      *http.Client
		method      string
		path        string
		contentType string
		headers     [][2]string
	}{
		{"no key", c, "GET", "/v1/codename", "", nil},
		{"wrong key", c, "GET", "/v1/codename", "", [][2]string{{"x-api-key", "wrong"}}},
		{"key with the wrong case", c, "GET", "/v1/codename", "", [][2]string{{"x-api-key", strings.ToUpper(testKey)}}},
		{"a prefix of the key", c, "GET", "/v1/codename", "", [][2]string{{"x-api-key", testKey[:10]}}},
		{"the key and more", c, "GET", "/v1/codename", "", [][2]string{{"x-api-key", testKey + "x"}}},
		{"the key twice", c, "GET", "/v1/codename", "", [][2]string{{"x-api-key", testKey}, {"x-api-key", testKey}}},
		{"a wrong key, then the key", h1, "GET", "/v1/codename", "", [][2]string{{"X-Api-Key", "wrong"}, {"x-api-key", testKey}}},
		{"comma-joined keys", c, "GET", "/v1/codename", "", [][2]string{{"x-api-key", "wrong, " + testKey}}},
		{"key in the query string", c, "GET", "/v1/codename?x-api-key=" + testKey + "&api_key=" + testKey, "", nil},
		{"key in another header", c, "GET", "/v1/codename", "", [][2]string{{"authorization", "Bearer " + testKey}}},
		{"odd content type", c, "POST", "/v1/codename", "text/plain", nil},
		{"encoded health path", c, "GET", "/%68ealthz", "", nil},
		{"health path with more after it", c, "GET", "/healthz/../v1/codename", "", nil},
		{"double slash health path", c, "GET", "//healthz", "", nil},
		{"encoded stream path", c, "POST", "/v1/codenames%3Astream", "application/json", nil},
		{"the gateway's metrics", c, "GET", "/metrics", "", nil},
		{"WebSocket upgrade", h1, "GET", "/v1/codenames:stream", "", [][2]string{{"Upgrade", "websocket"}, {"Connection", "Upgrade"}, {"Sec-WebSocket-Version", "13"}, {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}}},
	}
	before := s.backendSessions(t)
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, s.httpsURL(tt.path), strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			for _, h := range tt.headers {
				req.Header[h[0]] = append(req.Header[h[0]], h[1]) // as given, not canonicalised
			}
			resp, err := tt.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			// The metrics path is refused for the key before it is hidden;
			// a path that is not canonical is refused before the key is
			// read (e2e/canonical_test.go).
			want := http.StatusUnauthorized
			if strings.Contains(tt.path, "%") || strings.Contains(tt.path, "/.") || strings.HasPrefix(tt.path, "//") {
				want = http.StatusBadRequest
			}
			if resp.StatusCode != want || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("got %s %q, want %d with the JSON error shape", resp.Status, resp.Header.Get("Content-Type"), want)
			}
		})
	}

	// gRPC callers get UNAUTHENTICATED as a proper gRPC error.
	conn := s.grpcConn(t, true)
	client := codenamev1.NewCodenameCreatorClient(conn)
	for _, md := range []metadata.MD{
		nil,
		metadata.Pairs("x-api-key", "wrong"),
		metadata.Pairs("x-api-key", testKey, "x-api-key", testKey),
	} {
		ctx := metadata.NewOutgoingContext(t.Context(), md)
		_, err := client.GetCodename(ctx, &codenamev1.NameRequest{})
		if got := status.Code(err); got != codes.Unauthenticated || !strings.Contains(status.Convert(err).Message(), "x-api-key") {
			t.Errorf("metadata %v: %v, want Unauthenticated naming x-api-key", md, err)
		}
	}
	// A gRPC-Web caller gets it in its own form: Trailers-Only, in the
	// headers (e2e/connect_refusal_test.go has every protocol and refusal).
	req, err := http.NewRequestWithContext(t.Context(), "POST", s.httpsURL("/codename.v1.CodenameCreator/GetCodename"), strings.NewReader("\x00\x00\x00\x00\x00"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc-web+proto")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Grpc-Status") != "16" || resp.Header.Get("Content-Type") != "application/grpc-web+proto" {
		t.Errorf("gRPC-Web without a key: %s, grpc-status %q, content type %q; want 200, 16, application/grpc-web+proto", resp.Status, resp.Header.Get("Grpc-Status"), resp.Header.Get("Content-Type"))
	}
	// Watch holds a stream, so unlike Check it needs the key.
	watch, err := healthpb.NewHealthClient(conn).Watch(t.Context(), &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = watch.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("health Watch without a key: %v, want Unauthenticated", err)
	}
	legacy := conn.Invoke(t.Context(), "/CodenameCreator/GetCodename", &codenamev1.NameRequest{}, new(codenamev1.NameResult))
	if status.Code(legacy) != codes.Unauthenticated {
		t.Errorf("legacy path without a key: %v, want Unauthenticated", legacy)
	}

	after := s.backendSessions(t)
	for be, n := range after {
		if n != before[be] {
			t.Errorf("%s was given %d requests that should have been refused", be, n-before[be])
		}
	}

	// Health stays open without a key.
	if resp, b := do(t, c, "GET", s.httpsURL("/healthz"), "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz without a key: %s %s", resp.Status, b)
	}
	if res, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC health without a key: %v %v", res, err)
	}

	// The right key works, over gRPC and REST (through the gateway), in
	// any header-name case.
	ctx := metadata.AppendToOutgoingContext(t.Context(), "x-api-key", testKey)
	if _, err := client.GetCodename(ctx, &codenamev1.NameRequest{}); err != nil {
		t.Errorf("gRPC with the key: %v", err)
	}
	for _, name := range []string{"x-api-key", "X-API-KEY"} {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", s.httpsURL("/v1/codename"), nil)
		req.Header[name] = []string{testKey}
		resp, err := h1.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("REST with the key in %s: %s", name, resp.Status)
		}
	}

	// Who called is logged in redacted form by HAProxy and the server; the
	// key itself appears in no log.
	poll.For(t, "the server's log of the call with the key", 10*time.Second, func() error {
		if !strings.Contains(s.log.String(), "api_key=sha256:") {
			return errors.New("no line with api_key=sha256:")
		}
		return nil
	})
	logs := s.log.String()
	if strings.Contains(logs, testKey) {
		t.Error("the API key appears in a log")
	}
	if !strings.Contains(logs, "key=sha256:") {
		t.Error("HAProxy's log does not name the caller's key fingerprint")
	}
}

// TestRateLimit: over CODENAME_RATE_LIMIT requests in 10 s from one
// address are refused with 429 or RESOURCE_EXHAUSTED; a stream counts once
// however many messages it carries; health is not limited; the limit lifts
// once the client slows down.
func TestRateLimit(t *testing.T) {
	const limit = 15
	s := start(t, withEnv("CODENAME_RATE_LIMIT=15"))
	c := transports[1].client(t, s)
	client := s.grpcClient(t, true)

	// A stream is one request, whatever it carries.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	stream, err := client.KeepGettingCodenames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&codenamev1.NameRequest{}); err != nil {
		t.Fatal(err)
	}
	for range 20 { // 20 messages > the limit
		if _, err := stream.Recv(); err != nil {
			t.Fatalf("stream: %v", err)
		}
	}

	var ok, limited int
	for i := 0; i < 2*limit; i++ {
		resp, b := do(t, c, "GET", s.httpsURL("/v1/codename"), "", "")
		switch resp.StatusCode {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
			if resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), `"code":8`) {
				t.Errorf("429 without Retry-After or the JSON shape: %v %s", resp.Header, b)
			}
		default:
			t.Fatalf("unexpected %s %s", resp.Status, b)
		}
	}
	// The stream was 1 request, so limit-1 unary ones pass.
	if ok != limit-1 || limited != limit+1 {
		t.Errorf("%d passed and %d were limited, want %d and %d", ok, limited, limit-1, limit+1)
	}
	_, err = client.GetCodename(t.Context(), &codenamev1.NameRequest{})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("gRPC over the limit: %v, want ResourceExhausted", err)
	}
	if resp, _ := do(t, c, "GET", s.httpsURL("/healthz"), "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz over the limit: %s, want 200", resp.Status)
	}
	// Of gRPC health, only the one-shot Check is exempt: Watch holds a
	// stream, so it obeys the limit like any other stream.
	health := healthpb.NewHealthClient(s.grpcConn(t, true))
	if res, err := health.Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health Check over the limit: %v %v, want SERVING", res, err)
	}
	watch, err := health.Watch(t.Context(), &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = watch.Recv()
	}
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("health Watch over the limit: %v, want ResourceExhausted", err)
	}
	// The stream opened before goes on.
	if _, err := stream.Recv(); err != nil {
		t.Errorf("stream after the limit tripped: %v", err)
	}

	// The limit lifts when the rate over the last 10 s falls below it.
	start := time.Now()
	deadline := start.Add(20 * time.Second)
	for {
		resp, _ := do(t, c, "GET", s.httpsURL("/v1/codename"), "", "")
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still limited after 20 s")
		}
		// Refused requests count too: a client that keeps hammering
		// stays limited, one that slows down gets through.
		tick := time.NewTimer(time.Second)
		<-tick.C
	}
	t.Logf("recovered after %v", time.Since(start).Round(100*time.Millisecond))
}

// TestPerMethodRouting: streams and unary calls go to their own backends.
func TestPerMethodRouting(t *testing.T) {
	s := start(t)
	client := s.grpcClient(t, false)
	if _, err := client.GetCodename(t.Context(), &codenamev1.NameRequest{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := client.KeepGettingCodenames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&codenamev1.NameRequest{})
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	c := transports[3].client(t, s)
	do(t, c, "GET", s.httpURL("/v1/codename"), "", "")
	do(t, c, "POST", s.httpURL("/v1/codenames:stream"), "application/json", `{"category":"dragons"}`)

	want := map[string]string{
		"/codename.v1.CodenameCreator/GetCodename":          "be_grpc/",
		"/codename.v1.CodenameCreator/KeepGettingCodenames": "be_grpc_stream/",
		"/v1/codename HTTP":                                 "be_rest/",
		"/v1/codenames:stream":                              "be_rest_stream/",
	}
	poll.For(t, "the log lines of the four requests", 10*time.Second, func() error {
		for path, backend := range want {
			if countLogLines(s.log.String(), path, backend) == 0 {
				return fmt.Errorf("no line of %s on %s", path, backend)
			}
		}
		return nil
	})
}

// TestMetricsEndpoints: HAProxy, the servers and the gateways all expose
// Prometheus metrics, with the gRPC status of calls among them.
func TestMetricsEndpoints(t *testing.T) {
	s := start(t)
	client := s.grpcClient(t, true)
	if _, err := client.GetCodename(t.Context(), &codenamev1.NameRequest{}); err != nil {
		t.Fatal(err)
	}
	_, _ = client.GetCodename(t.Context(), &codenamev1.NameRequest{Category: "dragons"})
	do(t, transports[1].client(t, s), "GET", s.httpsURL("/v1/codename?category=space"), "", "")

	gatewayWants := []string{
		`codename_gateway_http_requests_total{code="200",method="GET"}`,
		"codename_gateway_http_request_duration_seconds_bucket",
	}
	if !s.colocated() {
		// Only a gateway that calls the server over the network is a
		// gRPC client; co-located, its calls are the server's.
		gatewayWants = append(gatewayWants, `grpc_client_handled_total{grpc_code="OK",grpc_method="GetCodename"`)
	}
	for _, tt := range []struct {
		name, url string
		want      []string
	}{
		{"haproxy", "http://" + s.cfg.StatsAddr + "/metrics", []string{
			"haproxy_frontend_http_requests_total", "haproxy_backend_http_responses_total", `haproxy_server_status{proxy="be_grpc",server="grpc1"`,
		}},
		{"server", "http://" + s.cfg.GRPCAdminAddrs[0] + "/metrics", []string{
			`grpc_server_handled_total{grpc_code="OK",grpc_method="GetCodename"`,
			`grpc_server_handled_total{grpc_code="InvalidArgument",grpc_method="GetCodename"`,
			"grpc_server_handling_seconds_bucket", "codename_open_streams",
		}},
		{"gateway", "http://" + s.restAdminAddr(1) + "/metrics", gatewayWants},
	} {
		body := s.get(t, tt.url)
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s metrics lack %s", tt.name, w)
			}
		}
	}
	// The gateway's metrics are not public.
	if resp, _ := do(t, transports[1].client(t, s), "GET", s.httpsURL("/metrics"), "", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics through HAProxy: %s, want 404", resp.Status)
	}
}
