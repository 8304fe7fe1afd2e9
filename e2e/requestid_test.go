package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/poll"
	"github.com/codename-gateway/codename-gateway/internal/stack"
	"github.com/codename-gateway/codename-gateway/internal/telemetry/otlptest"
)

// A request's id is a W3C trace ID: 32 lowercase hex digits.
var traceIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// newTraceID is a random trace ID, so that tests sharing a stack never
// find each other's lines.
func newTraceID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// waitLine waits for the first line of child's log holding every one of
// parts, and returns it.
func (s *system) waitLine(t *testing.T, child string, parts ...string) string {
	t.Helper()
	var line string
	poll.For(t, child+"'s log line with "+strings.Join(parts, ", "), 10*time.Second, func() error {
		if line = s.logLine(child, parts...); line == "" {
			return errors.New("no such line yet")
		}
		return nil
	})
	return line
}

// restID makes one REST call with header and returns the request id the
// answer carries in x-request-id, after checking that it is one trace ID.
func restID(t *testing.T, s *system, tp transport, method, path string, header http.Header, wantStatus int) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, tp.url(s, path), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := tp.client(t, s).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: status %d, want %d", method, path, resp.StatusCode, wantStatus)
	}
	ids := resp.Header.Values("X-Request-Id")
	if len(ids) != 1 || !traceIDPattern.MatchString(ids[0]) {
		t.Fatalf("%s %s: x-request-id %q, want one trace ID", method, path, ids)
	}
	return ids[0]
}

// grpcID makes one GetCodename call with md and returns the request id
// of its response header metadata.
func grpcID(t *testing.T, s *system, secure bool, md metadata.MD) string {
	t.Helper()
	var header metadata.MD
	ctx := metadata.NewOutgoingContext(t.Context(), md)
	if _, err := s.grpcClient(t, secure).GetCodename(ctx, &codenamev1.NameRequest{Category: "science"}, grpc.Header(&header)); err != nil {
		t.Fatalf("GetCodename: %v", err)
	}
	ids := header.Get("x-request-id")
	if len(ids) != 1 || !traceIDPattern.MatchString(ids[0]) {
		t.Fatalf("GetCodename: x-request-id metadata %q, want one trace ID", ids)
	}
	return ids[0]
}

// wantRESTLines finds a REST call by its id in HAProxy's, the gateway's
// and the server's log.
func (s *system) wantRESTLines(t *testing.T, id string) {
	t.Helper()
	s.waitLine(t, "haproxy", " be_rest/", "/v1/codename ", " trace_id="+id+" ")
	s.waitRESTLine(t, 1, "msg=request", "path=/v1/codename", "status=200", "trace_id="+id)
	s.waitLine(t, "server-1", `msg="finished call"`, "grpc.method=GetCodename", "grpc.code=OK", "trace_id="+id)
}

// wantGRPCLines finds a gRPC call by its id in HAProxy's and the server's
// log; the gateway never sees it.
func (s *system) wantGRPCLines(t *testing.T, id string) {
	t.Helper()
	s.waitLine(t, "haproxy", " be_grpc/", "/codename.v1.CodenameCreator/GetCodename ", " trace_id="+id+" ")
	s.waitLine(t, "server-1", `msg="finished call"`, "grpc.method=GetCodename", "grpc.code=OK", "trace_id="+id)
	if line := s.restLine(1, id); line != "" {
		t.Errorf("a gRPC call went through the gateway: %q", line)
	}
}

// TestRequestIDEverywhere: HAProxy gives each request an id, which it
// logs, the gateway and the server log on their lines for that call, and
// the client gets back in x-request-id: REST over HTTP/1.1 and HTTP/2,
// gRPC over TLS and h2c, a request HAProxy refuses itself, and a client's
// own x-request-id, which the edge's id replaces.
func TestRequestIDEverywhere(t *testing.T) {
	s := shared(t)
	for _, tp := range []transport{transports[1], transports[2]} {
		t.Run("REST "+tp.name, func(t *testing.T) {
			s.wantRESTLines(t, restID(t, s, tp, "GET", "/v1/codename?category=science", nil, http.StatusOK))
		})
	}
	for _, secure := range []bool{true, false} {
		name := map[bool]string{true: "gRPC TLS", false: "gRPC h2c"}[secure]
		t.Run(name, func(t *testing.T) {
			s.wantGRPCLines(t, grpcID(t, s, secure, nil))
		})
	}
	t.Run("REST streams", func(t *testing.T) {
		c := transports[2].client(t, s)
		// One codename of a stream, then the client goes: the server logs
		// the stream when it ends.
		firstLine := func(t *testing.T, req *http.Request) string {
			t.Helper()
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
				t.Fatalf("first line: %v", err)
			}
			return resp.Header.Get("X-Request-Id")
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		sse, err := http.NewRequestWithContext(ctx, "GET", s.httpURL("/v1/codenames:stream?category=science"), nil)
		if err != nil {
			t.Fatal(err)
		}
		sse.Header.Set("Accept", "text/event-stream")
		body, send := io.Pipe()
		defer send.Close()
		go func() { _, _ = io.WriteString(send, `{"category":"science"}`+"\n") }()
		ndjson, err := http.NewRequestWithContext(ctx, "POST", s.httpURL("/v1/codenames:stream"), body)
		if err != nil {
			t.Fatal(err)
		}
		ndjson.Header.Set("Content-Type", "application/json")
		ws, resp, err := dialWS(t, s, false, "")
		if err != nil {
			t.Fatalf("WebSocket: %v", err)
		}
		if err := ws.Write(ctx, websocket.MessageText, []byte(`{"category":"science"}`)); err != nil {
			t.Fatal(err)
		}
		readWS(t, ctx, ws)
		ws.CloseNow()
		for _, st := range []struct{ name, id, backend string }{
			{"SSE", firstLine(t, sse), " be_rest_stream/"},
			{"NDJSON", firstLine(t, ndjson), " be_rest_stream/"},
			{"WebSocket", resp.Header.Get("X-Request-Id"), " be_rest_ws/"},
		} {
			if !traceIDPattern.MatchString(st.id) {
				t.Fatalf("%s: x-request-id %q, want a trace ID", st.name, st.id)
			}
			s.waitLine(t, "haproxy", st.backend, "/v1/codenames:stream", " trace_id="+st.id+" ")
			s.waitRESTLine(t, 1, "msg=request", "path=/v1/codenames:stream", "trace_id="+st.id)
			s.waitLine(t, "server-1", `msg="finished call"`, "grpc.method=KeepGettingCodenames", "trace_id="+st.id)
		}
	})
	t.Run("refused by HAProxy", func(t *testing.T) {
		id := restID(t, s, transports[2], "GET", "/v1/%63odename", nil, http.StatusBadRequest)
		s.waitLine(t, "haproxy", " 400 ", " trace_id="+id+" ")
	})
	t.Run("x-request-id of the client's", func(t *testing.T) {
		id := restID(t, s, transports[2], "GET", "/v1/codename?category=science", http.Header{"X-Request-Id": {"demo-1"}}, http.StatusOK)
		s.wantRESTLines(t, id)
		if line := s.logLine("server-1", "demo-1"); line != "" {
			t.Errorf("the client's x-request-id reached the server's log: %q", line)
		}
	})
	t.Run("no span export with no OTEL_* set", func(t *testing.T) {
		for _, child := range []string{s.restName(1), "server-1"} {
			if line := s.logLine(child, "exporting traces"); line != "" {
				t.Errorf("%s exports traces with no OTEL_* set: %q", child, line)
			}
		}
	})
}

// TestRequestIDKeepsValidTraceparent: a client that sends exactly one
// valid traceparent keeps its trace ID, in every log and in the answer.
func TestRequestIDKeepsValidTraceparent(t *testing.T) {
	s := shared(t)
	t.Run("REST", func(t *testing.T) {
		trace := newTraceID(t)
		header := http.Header{"Traceparent": {"00-" + trace + "-00f067aa0ba902b7-01"}}
		if id := restID(t, s, transports[1], "GET", "/v1/codename?category=science", header, http.StatusOK); id != trace {
			t.Fatalf("x-request-id %s, want the traceparent's %s", id, trace)
		}
		s.wantRESTLines(t, trace)
	})
	t.Run("gRPC", func(t *testing.T) {
		trace := newTraceID(t)
		// Not sampled (flags 00): the id is kept all the same.
		md := metadata.Pairs("traceparent", "00-"+trace+"-00f067aa0ba902b7-00")
		if id := grpcID(t, s, true, md); id != trace {
			t.Fatalf("x-request-id %s, want the traceparent's %s", id, trace)
		}
		s.wantGRPCLines(t, trace)
	})
}

// TestRequestIDReplacesInvalidTraceparent: a traceparent that is not
// exactly one valid value is never passed on: the request gets a fresh id,
// which every log carries, and the client's trace ID is in no log at all.
func TestRequestIDReplacesInvalidTraceparent(t *testing.T) {
	s := shared(t)
	tests := []struct {
		name   string
		values func(trace string) []string
	}{
		{"malformed", func(tr string) []string { return []string{"00-" + tr + "-00f067aa0ba902b7"} }},
		{"duplicated", func(tr string) []string {
			return []string{"00-" + tr + "-00f067aa0ba902b7-01", "00-" + tr + "-00f067aa0ba902b7-01"}
		}},
		{"comma-joined", func(tr string) []string {
			return []string{"00-" + tr + "-00f067aa0ba902b7-01,00-" + tr + "-00f067aa0ba902b7-01"}
		}},
		{"upper-case hex", func(tr string) []string { return []string{"00-" + strings.ToUpper(tr) + "-00F067AA0BA902B7-01"} }},
		{"all-zero parent", func(tr string) []string { return []string{"00-" + tr + "-0000000000000000-01"} }},
		{"unknown version", func(tr string) []string { return []string{"01-" + tr + "-00f067aa0ba902b7-01"} }},
		{"trailing text", func(tr string) []string { return []string{"00-" + tr + "-00f067aa0ba902b7-01 x"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trace := newTraceID(t)
			header := http.Header{"Traceparent": tt.values(trace), "Tracestate": {"vendor=" + trace}}
			id := restID(t, s, transports[2], "GET", "/v1/codename?category=science", header, http.StatusOK)
			if strings.EqualFold(id, trace) {
				t.Fatalf("x-request-id %s: the invalid traceparent was kept", id)
			}
			s.wantRESTLines(t, id)
			if log := strings.ToLower(s.log.String()); strings.Contains(log, trace) {
				t.Errorf("the invalid traceparent's trace ID %s is in the logs", trace)
			}
		})
	}
	t.Run("all-zero trace ID", func(t *testing.T) {
		zero := strings.Repeat("0", 32)
		id := restID(t, s, transports[2], "GET", "/v1/codename?category=science",
			http.Header{"Traceparent": {"00-" + zero + "-00f067aa0ba902b7-01"}}, http.StatusOK)
		if id == zero {
			t.Fatal("x-request-id is the all-zero trace ID")
		}
		s.wantRESTLines(t, id)
	})
	t.Run("gRPC duplicated", func(t *testing.T) {
		trace := newTraceID(t)
		tp := "00-" + trace + "-00f067aa0ba902b7-01"
		id := grpcID(t, s, false, metadata.Pairs("traceparent", tp, "traceparent", tp))
		if id == trace {
			t.Fatalf("x-request-id %s: the duplicated traceparent was kept", id)
		}
		s.wantGRPCLines(t, id)
	})
}

// TestRequestIDTracesExported: with OTEL_TRACES_EXPORTER=otlp and an OTLP
// endpoint (a collector of the test's own on a free port), the gateway and
// the server export their spans of a call under its request id.
func TestRequestIDTracesExported(t *testing.T) {
	rcv := otlptest.Start()
	t.Cleanup(rcv.Close)
	// Separate: the gateway's process exports its own spans, with its
	// client span of the call (co-located: TestColocatedTracesExported).
	s := start(t, withEnv("OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.URL(), "OTEL_BSP_SCHEDULE_DELAY=100"), gatewayMode(stack.Separate))
	for _, child := range []string{"gateway-1", "server-1"} {
		s.waitLine(t, child, "exporting traces over OTLP")
	}
	restTrace := restID(t, s, transports[2], "GET", "/v1/codename?category=science", nil, http.StatusOK)
	grpcTrace := grpcID(t, s, false, nil)
	// The gateway's span of the request and of its gRPC call, the
	// server's of the call; the server's of the direct gRPC call.
	want := map[otlptest.Span]bool{
		{Service: "codename-gateway", Name: "GET", TraceID: restTrace, Kind: "SPAN_KIND_SERVER"}:                                     true,
		{Service: "codename-gateway", Name: "codename.v1.CodenameCreator/GetCodename", TraceID: restTrace, Kind: "SPAN_KIND_CLIENT"}: true,
		{Service: "codename-server", Name: "codename.v1.CodenameCreator/GetCodename", TraceID: restTrace, Kind: "SPAN_KIND_SERVER"}:  true,
		{Service: "codename-server", Name: "codename.v1.CodenameCreator/GetCodename", TraceID: grpcTrace, Kind: "SPAN_KIND_SERVER"}:  true,
	}
	missing := func() []otlptest.Span {
		got := map[otlptest.Span]bool{}
		for _, sp := range rcv.Spans() {
			got[sp] = true
		}
		var m []otlptest.Span
		for sp := range want {
			if !got[sp] {
				m = append(m, sp)
			}
		}
		return m
	}
	if _, ok := poll.Until(10*time.Second, func() bool { return len(missing()) == 0 }); !ok {
		t.Errorf("spans not exported: %+v; got %+v", missing(), rcv.Spans())
	}
}
