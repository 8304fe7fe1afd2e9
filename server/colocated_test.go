package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/codename-gateway/codename-gateway/gateway"
	"github.com/codename-gateway/codename-gateway/internal/grpctest"
	"github.com/codename-gateway/codename-gateway/internal/logtest"
	"github.com/codename-gateway/codename-gateway/internal/promtest"
	"github.com/codename-gateway/codename-gateway/internal/telemetry"
)

// colocated is a server with its gateway in process, and beside it a
// separate gateway that calls the same server over TCP, as
// cmd/codename-gateway does: what a client sees of the two must not differ.
type colocated struct {
	s        *grpcServer
	logs     *logtest.Recorder
	rest     string // the co-located gateway's base URL
	separate string // the separate gateway's
	shutdown grpctest.Stop
}

func startColocated(t *testing.T, cfg Config) *colocated {
	t.Helper()
	grpcLis, restLis := listenTCP(t), listenTCP(t)
	logs := new(logtest.Recorder)
	cfg.Logger = slog.New(logs)
	cfg.REST = &RESTConfig{Listener: restLis}
	s := newServer(cfg)
	shutdown := serveBuilt(t, grpcLis, s)

	h, err := gateway.New(t.Context(), dialTCP(t, grpcLis.Addr().String()), gateway.Options{Logger: slog.New(logs), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return &colocated{s: s, logs: logs, rest: "http://" + restLis.Addr().String(), separate: ts.URL, shutdown: shutdown}
}

// answer is what a client gets for one request.
type answer struct {
	status int
	body   string
}

func do(t *testing.T, method, url, body string, header http.Header) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(req.Header, header)
	if h := header.Get("Host"); h != "" {
		req.Host = h
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, url, err)
	}
	return answer{resp.StatusCode, string(b)}
}

// counter is the sum of counter name's samples with the given labels, as
// the server's admin listener serves them; 0 if there is none such.
func counter(t *testing.T, s *grpcServer, name string, labels map[string]string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	adminHandler(s.health, s.reg).ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d, want 200", rec.Code)
	}
	v, _ := promtest.Sum(rec.Body.String(), name, labels)
	return v
}

const testTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"

// TestColocatedUnaryRunsInterceptors: a REST call in process is logged,
// counted and traced by the server's own interceptors, as a gRPC call is.
func TestColocatedUnaryRunsInterceptors(t *testing.T) {
	c := startColocated(t, Config{})
	handled := map[string]string{"grpc_method": "GetCodename", "grpc_code": "OK"}
	before := counter(t, c.s, "grpc_server_handled_total", handled)
	got := do(t, http.MethodGet, c.rest+"/v1/codename?category=science", "", http.Header{
		"X-Api-Key-Id": {"key-1a2b"},
		"Traceparent":  {"00-" + testTraceID + "-00f067aa0ba902b7-01"},
	})
	if got.status != http.StatusOK || !strings.Contains(got.body, `"name"`) {
		t.Fatalf("GET /v1/codename = %d %s, want 200 and a name", got.status, got.body)
	}
	c.logs.WaitFor(t, "finished call", map[string]string{
		methodKey: "GetCodename", methodTypeKey: "unary", codeKey: "OK", apiKeyKey: "key-1a2b", traceIDKey: testTraceID,
	})
	if after := counter(t, c.s, "grpc_server_handled_total", handled); after != before+1 {
		t.Errorf("grpc_server_handled_total{GetCodename,OK} = %v, want %v", after, before+1)
	}
	// The gateway's own request line, and its metrics on the server's
	// registry, which the admin listener serves.
	c.logs.WaitFor(t, "request", map[string]string{"path": "/v1/codename"})
	if n := counter(t, c.s, "codename_gateway_http_requests_total", nil); n == 0 {
		t.Error("codename_gateway_http_requests_total is missing from the server's registry")
	}
}

// TestColocatedAnswersAsSeparate: errors, deadlines included, reach a REST
// client with the same status and the same JSON from either gateway, and
// the server logs the in-process call with the code the client got.
func TestColocatedAnswersAsSeparate(t *testing.T) {
	c := startColocated(t, Config{testUnary: slowWhenAsked})
	tests := []struct {
		name       string
		method     string
		path, body string
		header     http.Header
		want       int
		// codeOnly compares the JSON error's code but not its message:
		// over the network, the message of a deadline that passes in the
		// server depends on which end noticed first.
		codeOnly bool
		logCode  string // the server's grpc.code, "" if the call never reaches it
	}{
		{name: "unknown category", method: http.MethodGet, path: "/v1/codename?category=nonsense", want: http.StatusBadRequest, logCode: "InvalidArgument"},
		{name: "unknown field", method: http.MethodPost, path: "/v1/codename", body: `{"categroy":"space"}`, want: http.StatusBadRequest},
		{name: "deadline passed in the server", method: http.MethodGet, path: "/v1/codename?category=space",
			header: http.Header{"X-Request-Id": {"slow"}, "Grpc-Timeout": {"100m"}}, want: http.StatusGatewayTimeout, codeOnly: true, logCode: "DeadlineExceeded"},
		{name: "deadline passed before the call", method: http.MethodGet, path: "/v1/codename?category=space",
			header: http.Header{"Grpc-Timeout": {"1n"}}, want: http.StatusGatewayTimeout},
		{name: "wrong method", method: http.MethodDelete, path: "/v1/codename", want: http.StatusMethodNotAllowed},
		{name: "list categories", method: http.MethodGet, path: "/v1/categories", want: http.StatusOK, logCode: "OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := "GetCodename"
			if strings.Contains(tt.path, "categories") {
				method = "ListCategories"
			}
			logged := map[string]string{methodKey: method, codeKey: tt.logCode}
			before := c.logs.Count("finished call", logged)
			co := do(t, tt.method, c.rest+tt.path, tt.body, tt.header)
			if tt.logCode != "" {
				eventually(t, fmt.Sprintf("a finished call line with %v", logged), func() (bool, string) {
					n := c.logs.Count("finished call", logged)
					return n > before, fmt.Sprintf("%d such lines", n)
				})
			}
			sep := do(t, tt.method, c.separate+tt.path, tt.body, tt.header)
			if co.status != tt.want {
				t.Errorf("co-located: %d %s, want %d", co.status, co.body, tt.want)
			}
			if tt.codeOnly {
				co.body, sep.body = errorCode(t, co.body), errorCode(t, sep.body)
			}
			if co != sep {
				t.Errorf("co-located answered\n%d %s\nseparate\n%d %s", co.status, co.body, sep.status, sep.body)
			}
		})
	}
}

// errorCode is the code of the gateway's JSON error body.
func errorCode(t *testing.T, body string) string {
	t.Helper()
	var e struct{ Code *int }
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code == nil {
		t.Fatalf("%s: not the gateway's JSON error (%v)", body, err)
	}
	return strconv.Itoa(*e.Code)
}

// slowWhenAsked holds a call whose x-request-id is "slow" until its
// deadline, as a server that does not answer in time would.
func slowWhenAsked(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if id := metadata.ValueFromIncomingContext(ctx, "x-request-id"); len(id) == 1 && id[0] == "slow" {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return handler(ctx, req)
}

// seen is what a handler learned of one call.
type seen struct {
	md       metadata.MD
	method   string
	peer     bool
	deadline bool
	traceID  string
}

// TestColocatedCallSeesWhatNetworkCallSees: the server's handler sees the
// same metadata (who called, the request ID, the traceparent, what the
// gateway forwards), method, deadline, peer and trace from an in-process
// call as from a separate gateway's call over the network.
func TestColocatedCallSeesWhatNetworkCallSees(t *testing.T) {
	var (
		mu    sync.Mutex
		calls []seen
	)
	record := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		_, hasDeadline := ctx.Deadline()
		p, hasPeer := peer.FromContext(ctx)
		method, _ := grpc.Method(ctx)
		mu.Lock()
		calls = append(calls, seen{md: md.Copy(), method: method + "|" + info.FullMethod, peer: hasPeer && p.Addr != nil, deadline: hasDeadline, traceID: telemetry.TraceID(ctx)})
		mu.Unlock()
		return handler(ctx, req)
	}
	c := startColocated(t, Config{testUnary: record})
	header := http.Header{
		"Host":         {"codename.example"},
		"User-Agent":   {"colocated-test/1"},
		"X-Api-Key-Id": {"key-1a2b"},
		"X-Request-Id": {testTraceID},
		"Traceparent":  {"00-" + testTraceID + "-00f067aa0ba902b7-01"},
		"X-Team":       {"ignored"},
	}
	for _, base := range []string{c.separate, c.rest} {
		if got := do(t, http.MethodGet, base+"/v1/codename?category=space", "", header); got.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", base, got.status, got.body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 {
		t.Fatalf("the handler saw %d calls, want 2", len(calls))
	}
	network, inProc := calls[0], calls[1]
	// The authority names the connection; grpc-accept-encoding lists the
	// compressors the client could read, and in process nothing is
	// compressed.
	for _, s := range []*seen{&network, &inProc} {
		delete(s.md, ":authority")
		delete(s.md, "grpc-accept-encoding")
	}
	if !equalMD(network.md, inProc.md) {
		t.Errorf("metadata in process:\n%v\nover the network:\n%v", inProc.md, network.md)
	}
	if network.method != "/codename.v1.CodenameCreator/GetCodename|/codename.v1.CodenameCreator/GetCodename" || !network.peer || !network.deadline || network.traceID != testTraceID {
		t.Errorf("over the network the handler saw %+v", network)
	}
	if inProc.method != network.method || inProc.peer != network.peer || inProc.deadline != network.deadline || inProc.traceID != network.traceID {
		t.Errorf("in process the handler saw %+v, over the network %+v", inProc, network)
	}
}

func equalMD(a, b metadata.MD) bool {
	return maps.EqualFunc(a, b, func(x, y []string) bool { return slices.Equal(x, y) })
}

// TestColocatedStreams: the streams of the REST face, NDJSON and WebSocket,
// reach the server over the in-memory connection, through its stream
// interceptors.
func TestColocatedStreams(t *testing.T) {
	c := startColocated(t, Config{StreamInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()

	t.Run("NDJSON", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.rest+"/v1/codenames:stream", strings.NewReader(`{"category":"space"}`+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Api-Key-Id", "key-ndjson")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/x-ndjson" {
			t.Fatalf("POST stream: %d %q, want 200 application/x-ndjson", resp.StatusCode, ct)
		}
		lines := bufio.NewScanner(resp.Body)
		for i := range 3 {
			if !lines.Scan() {
				t.Fatalf("line %d: %v", i, lines.Err())
			}
			var line struct {
				Result struct{ Name string } `json:"result"`
			}
			if err := json.Unmarshal(lines.Bytes(), &line); err != nil || line.Result.Name == "" {
				t.Fatalf("line %d = %s, want a result with a name (%v)", i, lines.Bytes(), err)
			}
		}
		cancel()
		c.logs.WaitFor(t, "finished call", map[string]string{methodKey: "KeepGettingCodenames", methodTypeKey: "bidi_stream", apiKeyKey: "key-ndjson"})
	})

	t.Run("WebSocket", func(t *testing.T) {
		conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(c.rest, "http")+"/v1/codenames:stream", &websocket.DialOptions{
			HTTPHeader: http.Header{"X-Api-Key-Id": {"key-ws"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		if err := conn.Write(ctx, websocket.MessageText, []byte(`{"category":"science"}`)); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			_, data, err := conn.Read(ctx)
			if err != nil || !strings.Contains(string(data), `"name"`) {
				t.Fatalf("message %d = %s, %v; want a result", i, data, err)
			}
		}
		conn.Close(websocket.StatusNormalClosure, "")
		c.logs.WaitFor(t, "finished call", map[string]string{methodKey: "KeepGettingCodenames", apiKeyKey: "key-ws"})
	})
}

// TestColocatedHealthFollowsDrain: the co-located gateway's /healthz is
// the server's health, and turns to 503 as soon as the server drains,
// while the drain delay still serves REST calls.
func TestColocatedHealthFollowsDrain(t *testing.T) {
	c := startColocated(t, Config{DrainDelay: time.Second})
	if got := do(t, http.MethodGet, c.rest+"/healthz", "", nil); got.status != http.StatusOK {
		t.Fatalf("/healthz while serving = %d %s, want 200", got.status, got.body)
	}
	go c.shutdown()
	eventually(t, "/healthz to turn 503 while the server drains", func() (bool, string) {
		got := do(t, http.MethodGet, c.rest+"/healthz", "", nil)
		return got.status == http.StatusServiceUnavailable, fmt.Sprintf("%d %s", got.status, got.body)
	})
	if got := do(t, http.MethodGet, c.rest+"/v1/codename?category=space", "", nil); got.status != http.StatusOK {
		t.Errorf("a call in the drain delay = %d %s, want 200", got.status, got.body)
	}
	if _, err := c.shutdown(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := http.Get(c.rest + "/healthz"); err == nil {
		t.Error("the REST listener still answers after the server stopped")
	}
}
