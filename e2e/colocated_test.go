package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/coder/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/api/codename/v1/codenamev1connect"
	"github.com/codename-gateway/codename-gateway/internal/poll"
	"github.com/codename-gateway/codename-gateway/internal/stack"
	"github.com/codename-gateway/codename-gateway/internal/telemetry/otlptest"
)

// TestColocatedThroughHAProxy runs the stack in the co-located mode, with
// the unchanged haproxy.cfg, and calls it as clients do: REST unary, the
// NDJSON stream, a WebSocket, gRPC-Web through connect-go, /healthz, and
// native gRPC, which must still reach the gRPC listener. Every REST-side
// call is answered by the server process (there is no gateway process),
// logged by its gateway and by its call log with the caller's key ID and
// trace.
func TestColocatedThroughHAProxy(t *testing.T) {
	s := start(t, apiKey(testKey), gatewayMode(stack.Colocated))
	if p := s.Process("gateway-1"); p != nil {
		t.Fatalf("a gateway process (PID %d) runs in the co-located mode", p.PID())
	}
	s.waitLine(t, "server-1", "serving REST (co-located gateway)", "addr="+s.cfg.GatewayAddrs[0])
	keyed := http.Header{"X-Api-Key": {testKey}}

	t.Run("healthz", func(t *testing.T) {
		resp, body := doWith(t, http.DefaultClient, http.MethodGet, s.httpURL("/healthz"), "", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/healthz through HAProxy = %s %s, want 200", resp.Status, body)
		}
		for _, row := range s.statsRows(t) {
			if (row["pxname"] == "be_rest" || row["pxname"] == "be_rest_stream") && row["svname"] == "gw1" && !strings.HasPrefix(row["status"], "UP") {
				t.Errorf("%s/gw1 (the server's REST listener) is %s, want UP", row["pxname"], row["status"])
			}
		}
	})

	for _, tp := range []transport{transports[1], transports[2]} { // https-h2, http-h1
		t.Run("REST unary/"+tp.name, func(t *testing.T) {
			resp, body := doWith(t, tp.client(t, s), http.MethodGet, tp.url(s, "/v1/codename?category=science"), "", keyed)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /v1/codename: %s %s", resp.Status, body)
			}
			var got nameBody
			if err := json.Unmarshal(body, &got); err != nil || categoryOf(got.Name) != "science" {
				t.Fatalf("GET /v1/codename = %s (%v), want a science codename", body, err)
			}
			id := resp.Header.Get("X-Request-Id")
			s.waitLine(t, "haproxy", " be_rest/gw1 ", "/v1/codename", " trace_id="+id+" ")
			s.waitLine(t, "server-1", "msg=request", "component=gateway", "path=/v1/codename", "trace_id="+id)
			s.waitLine(t, "server-1", `msg="finished call"`, "grpc.method=GetCodename", "grpc.code=OK", "api_key=sha256:", "trace_id="+id)

			resp, body = doWith(t, tp.client(t, s), http.MethodGet, tp.url(s, "/v1/codename?category=nonsense"), "", keyed)
			var e errorBody
			if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Code != 3 || !strings.Contains(e.Message, "science") {
				t.Errorf("unknown category: %s %s, want 400 with code 3 naming the categories", resp.Status, body)
			}
		})
	}

	t.Run("NDJSON stream", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.httpsURL("/v1/codenames:stream"), strings.NewReader(`{"category":"space"}`+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Api-Key", testKey)
		resp, err := transports[1].client(t, s).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("POST /v1/codenames:stream: %s %s", resp.Status, b)
		}
		lines := bufio.NewScanner(resp.Body)
		for i := range 3 {
			var line streamLine
			if !lines.Scan() || json.Unmarshal(lines.Bytes(), &line) != nil || line.Result == nil || categoryOf(line.Result.Name) != "space" {
				t.Fatalf("line %d = %q (%v), want a space codename", i, lines.Bytes(), lines.Err())
			}
		}
		id := resp.Header.Get("X-Request-Id")
		cancel()
		s.waitLine(t, "haproxy", " be_rest_stream/gw1 ", "/v1/codenames:stream", " trace_id="+id+" ")
		s.waitLine(t, "server-1", `msg="finished call"`, "grpc.method=KeepGettingCodenames", "api_key=sha256:", "trace_id="+id)
	})

	t.Run("WebSocket", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		tr := &http.Transport{TLSClientConfig: s.tlsConfig("http/1.1")}
		defer tr.CloseIdleConnections()
		c, _, err := websocket.Dial(ctx, wsURL(s, true), &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}, HTTPHeader: keyed})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.CloseNow()
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"category":"animals"}`)); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if l := readWS(t, ctx, c); l.Result == nil || categoryOf(l.Result.Name) != "animals" {
				t.Fatalf("message %d = %+v, want an animals codename", i, l)
			}
		}
		c.Close(websocket.StatusNormalClosure, "")
		s.waitLine(t, "haproxy", " be_rest_ws/gw1 ", "/v1/codenames:stream")
	})

	t.Run("gRPC-Web", func(t *testing.T) {
		client := codenamev1connect.NewCodenameCreatorClient(transports[1].client(t, s), s.httpsURL(""), connect.WithGRPCWeb())
		req := connect.NewRequest(&codenamev1.NameRequest{Category: "space"})
		req.Header().Set("X-Api-Key", testKey)
		res, err := client.GetCodename(t.Context(), req)
		if err != nil {
			t.Fatalf("GetCodename over gRPC-Web: %v", err)
		}
		if got := categoryOf(res.Msg.GetName()); got != "space" {
			t.Errorf("GetCodename(space) = %q, of category %q", res.Msg.GetName(), got)
		}
		id := res.Header().Get("X-Request-Id")
		s.waitLine(t, "haproxy", " be_rest/gw1 ", "/codename.v1.CodenameCreator/GetCodename", " trace_id="+id+" ")
		s.waitLine(t, "server-1", `msg="finished call"`, "grpc.method=GetCodename", "trace_id="+id)
	})

	t.Run("gRPC goes to the gRPC listener", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(t.Context(), "x-api-key", testKey)
		var header metadata.MD
		res, err := codenamev1.NewCodenameCreatorClient(s.grpcConn(t, true)).GetCodename(ctx, &codenamev1.NameRequest{Category: "science"}, grpc.Header(&header))
		if err != nil {
			t.Fatalf("GetCodename over gRPC: %v", err)
		}
		if got := categoryOf(res.GetName()); got != "science" {
			t.Errorf("GetCodename(science) = %q, of category %q", res.GetName(), got)
		}
		ids := header.Get("x-request-id")
		if len(ids) != 1 {
			t.Fatalf("x-request-id = %v, want one", ids)
		}
		s.waitLine(t, "haproxy", " be_grpc/", "/codename.v1.CodenameCreator/GetCodename", " trace_id="+ids[0]+" ")
	})
}

// TestColocatedTracesExported: with spans exported, the co-located server
// records the REST request's span and, though no transport carries the
// call, the call's server span, named as a call from the network is.
func TestColocatedTracesExported(t *testing.T) {
	rcv := otlptest.Start()
	t.Cleanup(rcv.Close)
	s := start(t, withEnv("OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.URL(), "OTEL_BSP_SCHEDULE_DELAY=100"), gatewayMode(stack.Colocated))
	s.waitLine(t, "server-1", "exporting traces over OTLP")
	restTrace := restID(t, s, transports[2], "GET", "/v1/codename?category=science", nil, http.StatusOK)
	want := []otlptest.Span{
		{Service: "codename-server", Name: "GET", TraceID: restTrace, Kind: "SPAN_KIND_SERVER"},
		{Service: "codename-server", Name: "codename.v1.CodenameCreator/GetCodename", TraceID: restTrace, Kind: "SPAN_KIND_SERVER"},
	}
	missing := func() []otlptest.Span {
		return slices.DeleteFunc(slices.Clone(want), func(w otlptest.Span) bool { return slices.Contains(rcv.Spans(), w) })
	}
	if _, ok := poll.Until(10*time.Second, func() bool { return len(missing()) == 0 }); !ok {
		t.Errorf("spans not exported: %+v; got %+v", missing(), rcv.Spans())
	}
}

// TestColocatedReplicaDrains: co-located, a server told to stop drains
// its REST listener with its gRPC one: its /healthz says NOT_SERVING on
// both, HAProxy moves REST and gRPC calls to the other replica without a
// REST call failing, and it exits cleanly.
func TestColocatedReplicaDrains(t *testing.T) {
	// Cleartext behind the edge, so that the test can ask the REST
	// listener itself.
	s := start(t, replicas(2), withEnv("CODENAME_DRAIN_DELAY=1500ms"), gatewayMode(stack.Colocated), backendTLS("off"))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	grpcLoad, restLoad := unaryLoads(t, loadCtx, s, true, transports[1], "/v1/codename", 2)
	h1Load := restUnaryLoad(loadCtx, transports[2].client(t, s), s.httpURL("/v1/codename"), 2)
	poll.For(t, "some load", 10*time.Second, func() error { return okPast(20, grpcLoad, restLoad, h1Load) })

	// The REST listener's /healthz, which HAProxy's gateway backend checks,
	// follows the server's own health.
	drainProcess(t, s, "server-1", "http://"+s.cfg.GatewayAddrs[0]+"/healthz", restLoad, 20)
	stopLoad()
	grpcLoad.checkAfterKill(t, "gRPC unary")
	restLoad.check(t, "REST unary over h2")
	h1Load.check(t, "REST unary over HTTP/1.1")
	if strings.Contains(s.log.String(), "drain timed out") {
		t.Error("server-1 needed its drain timeout: something held the graceful stop open")
	}
	s.waitLine(t, "server-1", "msg=stopped", "component=gateway")
}
