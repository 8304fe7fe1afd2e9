package gateway_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/gateway"
	"github.com/codename-gateway/codename-gateway/internal/logtest"
	"github.com/codename-gateway/codename-gateway/internal/promtest"
)

// metadataRecorder is a fake gRPC server's answer to every call: it keeps
// the call's metadata, sends header if there is one, and answers with one
// name, "Fake Name".
type metadataRecorder struct {
	header   metadata.MD
	received chan metadata.MD
}

// server returns a gRPC server that answers every call so.
func (m *metadataRecorder) server() *grpc.Server {
	m.received = make(chan metadata.MD, 1)
	return grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		md, _ := metadata.FromIncomingContext(stream.Context())
		m.received <- md
		if err := stream.RecvMsg(new(codenamev1.NameRequest)); err != nil {
			return err
		}
		if m.header != nil {
			if err := stream.SendHeader(m.header); err != nil {
				return err
			}
		}
		return stream.SendMsg(&codenamev1.NameResult{Name: "Fake Name"})
	}))
}

// last returns the metadata of the call the server got since the last
// last, failing the test if there was none.
func (m *metadataRecorder) last(t *testing.T) metadata.MD {
	t.Helper()
	select {
	case md := <-m.received:
		return md
	default:
		t.Fatal("the fake server got no call")
		return nil
	}
}

// serve calls h directly, so that everything it logs and counts is done
// when serve returns.
func serve(t *testing.T, h http.Handler, method, target, body string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequestWithContext(t.Context(), method, target, nil)
	} else {
		r = httptest.NewRequestWithContext(t.Context(), method, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		r.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// scrape returns what Prometheus would read from reg.
func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), "GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: status %d", rec.Code)
	}
	return rec.Body.String()
}

// TestObserveMetrics checks the gateway's own request metrics in the
// registry it is given.
func TestObserveMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, _ := startGatewayWith(t, gateway.Options{MaxBodyBytes: maxBodyBytes, Metrics: reg})
	for _, req := range []struct{ method, target, body string }{
		{"GET", "/v1/codename?category=science", ""},
		{"GET", "/healthz", ""},
		{"GET", "/nope", ""},
		{"POST", "/v1/codename", `{"category":"plants"}`},
		{"PUT", "/v1/codename", `{}`},
	} {
		serve(t, h, req.method, req.target, req.body, nil)
	}

	body := scrape(t, reg)
	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{name: "GET 200", metric: "codename_gateway_http_requests_total",
			labels: map[string]string{"method": "GET", "code": "200"}, want: 2},
		{name: "GET 404", metric: "codename_gateway_http_requests_total",
			labels: map[string]string{"method": "GET", "code": "404"}, want: 1},
		{name: "POST 400", metric: "codename_gateway_http_requests_total",
			labels: map[string]string{"method": "POST", "code": "400"}, want: 1},
		{name: "PUT 405", metric: "codename_gateway_http_requests_total",
			labels: map[string]string{"method": "PUT", "code": "405"}, want: 1},
		{name: "GET durations", metric: "codename_gateway_http_request_duration_seconds_count",
			labels: map[string]string{"method": "GET"}, want: 3},
		{name: "GET durations, largest bucket", metric: "codename_gateway_http_request_duration_seconds_bucket",
			labels: map[string]string{"method": "GET", "le": "+Inf"}, want: 3},
		{name: "in flight: none", metric: "codename_gateway_http_requests_in_flight", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := promtest.Sum(body, tt.metric, tt.labels)
			if !ok {
				t.Fatalf("no %s%v in:\n%s", tt.metric, tt.labels, body)
			}
			if got != tt.want {
				t.Errorf("%s%v = %v, want %v", tt.metric, tt.labels, got, tt.want)
			}
		})
	}
}

// TestMetricsAreNotPublic: the handler never serves the metrics, in any
// spelling of the path, even when it counts into a registry; they belong on
// an admin listener that HAProxy does not reach.
func TestMetricsAreNotPublic(t *testing.T) {
	h, _ := startGatewayWith(t, gateway.Options{MaxBodyBytes: maxBodyBytes, Metrics: prometheus.NewRegistry()})
	ts := serveHTTP1(t, h)
	for _, path := range []string{"/metrics", "/%6detrics", "/%6Detrics", "/metric%73", "/metrics/"} {
		t.Run(path, func(t *testing.T) {
			// A raw request line, so that the client sends the path as
			// written.
			conn, err := net.Dial("tcp", ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(waitTimeout))
			if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n", path); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s = %d, want 404; body:\n%.200s", path, resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type = %q, want application/json", ct)
			}
			if bytes.Contains(body, []byte("codename_gateway_")) {
				t.Errorf("GET %s shows metrics:\n%.200s", path, body)
			}
		})
	}
}

// TestObserveMethodLabelsAreBounded: a client inventing HTTP methods adds
// at most one series to each request metric, whatever it invents.
func TestObserveMethodLabelsAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, _ := startGatewayWith(t, gateway.Options{MaxBodyBytes: maxBodyBytes, Metrics: reg})
	series := func() map[string]int {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, f := range families {
			n[f.GetName()] = len(f.GetMetric())
		}
		return n
	}
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		serve(t, h, m, "/v1/codename", "", nil)
	}
	before := series()
	for i := range 100 {
		serve(t, h, fmt.Sprintf("INVENTED%d", i), "/v1/codename", "", nil)
	}
	serve(t, h, "get", "/v1/codename", "", nil) // methods are case-sensitive
	after := series()
	for _, name := range []string{"codename_gateway_http_requests_total", "codename_gateway_http_request_duration_seconds"} {
		if before[name] == 0 {
			t.Errorf("no %s series before the invented methods", name)
		}
		if extra := after[name] - before[name]; extra > 1 {
			t.Errorf("%s: %d new series after 101 invented methods, want at most 1", name, extra)
		}
	}
	got, ok := promtest.Sum(scrape(t, reg), "codename_gateway_http_requests_total", map[string]string{"method": "other"})
	if !ok || got != 101 {
		t.Errorf(`requests with method="other" = %v (found: %v), want 101`, got, ok)
	}
}

// TestObserveLogs checks that each request but health checks gets one log
// line, with who asked for what and how it went.
func TestObserveLogs(t *testing.T) {
	logs := new(logtest.Recorder)
	h, _ := startGatewayWith(t, gateway.Options{MaxBodyBytes: maxBodyBytes, Logger: slog.New(logs), Metrics: prometheus.NewRegistry()})
	tests := []struct {
		name       string
		method     string
		target     string
		body       string
		header     http.Header
		wantLogged bool
		wantStatus int
		wantAPIKey string
	}{
		{name: "unary call", method: "GET", target: "/v1/codename?category=space",
			wantLogged: true, wantStatus: 200},
		{name: "with an API key ID", method: "POST", target: "/v1/codename", body: `{"category":"space"}`,
			header: http.Header{"X-Api-Key-Id": {"key-1a2b"}}, wantLogged: true, wantStatus: 200, wantAPIKey: "key-1a2b"},
		{name: "error", method: "GET", target: "/v1/codename?category=plants", wantLogged: true, wantStatus: 400},
		{name: "unknown path", method: "GET", target: "/nope", wantLogged: true, wantStatus: 404},
		{name: "health check", method: "GET", target: "/healthz"},
		{name: "metrics, not served here", method: "GET", target: "/metrics", wantLogged: true, wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_ = logs.Take()
			rec := serve(t, h, tt.method, tt.target, tt.body, tt.header)
			recs := logs.Take()
			if !tt.wantLogged {
				if len(recs) != 0 {
					t.Errorf("got %d log lines, want none: %v", len(recs), recs)
				}
				return
			}
			if len(recs) != 1 {
				t.Fatalf("got %d log lines, want 1: %v", len(recs), recs)
			}
			if got, want := recs[0].Message, "request"; got != want {
				t.Errorf("message = %q, want %q", got, want)
			}
			a := logtest.Attrs(recs[0])
			path, _, _ := strings.Cut(tt.target, "?")
			for key, want := range map[string]string{"method": tt.method, "path": path, "api_key": tt.wantAPIKey} {
				if got := a[key].String(); got != want {
					t.Errorf("%s = %q, want %q", key, got, want)
				}
			}
			if got := a["status"]; got.Kind() != slog.KindInt64 || got.Int64() != int64(tt.wantStatus) || rec.Code != tt.wantStatus {
				t.Errorf("status = %v, response status %d; want %d", got, rec.Code, tt.wantStatus)
			}
			if got := a["duration_ms"]; got.Kind() != slog.KindFloat64 || got.Float64() < 0 {
				t.Errorf("duration_ms = %v, want a number of milliseconds", got)
			}
		})
	}
}

// TestHeadersToAndFromServer checks which HTTP headers reach the gRPC
// server as metadata, and which metadata come back as headers, against a
// fake server that records what it is sent.
func TestHeadersToAndFromServer(t *testing.T) {
	calls := &metadataRecorder{header: metadata.Pairs("x-served-by", "fake")}
	h := fakeGateway(t, calls.server(), gateway.Options{})

	rec := serve(t, h, "GET", "/v1/codename?category=space", "", http.Header{
		"X-Api-Key-Id": {"key-1a2b"},
		"X-Request-Id": {"req-42"},
		"X-Unrelated":  {"nope"},
	})
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200; body:\n%s", rec.Code, rec.Body)
	}
	md := calls.last(t)

	t.Run("to the server", func(t *testing.T) {
		tests := []struct {
			name string
			key  string
			want []string
		}{
			{name: "API key ID", key: "x-api-key-id", want: []string{"key-1a2b"}},
			{name: "request ID", key: "x-request-id", want: []string{"req-42"}},
			{name: "other headers stay behind", key: "x-unrelated"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := md.Get(tt.key)
				if strings.Join(got, ",") != strings.Join(tt.want, ",") || len(got) != len(tt.want) {
					t.Errorf("metadata %s = %q, want %q", tt.key, got, tt.want)
				}
			})
		}
	})

	t.Run("from the server", func(t *testing.T) {
		tests := []struct {
			name   string
			header string
			want   string
		}{
			{name: "server metadata", header: "Grpc-Metadata-X-Served-By", want: "fake"},
			{name: "not the gRPC content type", header: "Grpc-Metadata-Content-Type", want: ""},
			{name: "JSON content type", header: "Content-Type", want: "application/json"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got := rec.Header().Get(tt.header); got != tt.want {
					t.Errorf("header %s = %q, want %q", tt.header, got, tt.want)
				}
			})
		}
	})
}
