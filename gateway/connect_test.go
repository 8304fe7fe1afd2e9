package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/api/codename/v1/codenamev1connect"
	"github.com/codename-gateway/codename-gateway/gateway"
	"github.com/codename-gateway/codename-gateway/server/codename"
)

// browserProtocols are the protocols a generated browser client speaks,
// as connect-go's client options.
var browserProtocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{"Connect proto", nil},
	{"Connect JSON", []connect.ClientOption{connect.WithProtoJSON()}},
	{"gRPC-Web proto", []connect.ClientOption{connect.WithGRPCWeb()}},
	{"gRPC-Web JSON", []connect.ClientOption{connect.WithGRPCWeb(), connect.WithProtoJSON()}},
}

// startConnectServer serves the gateway over TLS with HTTP/2, as HAProxy
// reaches it.
func startConnectServer(t *testing.T, opts gateway.Options) *httptest.Server {
	t.Helper()
	h, _ := startGatewayWith(t, opts)
	return serveHTTP2(t, h)
}

// streamClient calls KeepGettingCodenames as the server stream that
// browser clients make of it.
func streamClient(ts *httptest.Server, opts []connect.ClientOption) *connect.Client[codenamev1.NameRequest, codenamev1.NameResult] {
	return connect.NewClient[codenamev1.NameRequest, codenamev1.NameResult](ts.Client(), ts.URL+codenamev1connect.CodenameCreatorKeepGettingCodenamesProcedure, opts...)
}

func TestConnectUnary(t *testing.T) {
	ts := startConnectServer(t, gateway.Options{})
	h1, _ := startGatewayWith(t, gateway.Options{})
	plain := serveHTTP1(t, h1) // as a browser may reach it
	for _, p := range browserProtocols {
		for _, srv := range []struct {
			name string
			ts   *httptest.Server
		}{{"h2", ts}, {"HTTP/1.1", plain}} {
			t.Run(p.name+" "+srv.name, func(t *testing.T) {
				client := codenamev1connect.NewCodenameCreatorClient(srv.ts.Client(), srv.ts.URL, p.opts...)
				res, err := client.GetCodename(t.Context(), connect.NewRequest(&codenamev1.NameRequest{Category: "Science"}))
				if err != nil {
					t.Fatalf("GetCodename: %v", err)
				}
				if got := codename.CategoryOf(res.Msg.GetName()); got != "science" {
					t.Errorf("GetCodename(science) = %q, of category %q", res.Msg.GetName(), got)
				}
				cats, err := client.ListCategories(t.Context(), connect.NewRequest(&codenamev1.ListCategoriesRequest{}))
				if err != nil {
					t.Fatalf("ListCategories: %v", err)
				}
				if got := cats.Msg.GetCategories(); len(got) < 2 || cats.Msg.GetDefaultCategory() == "" {
					t.Errorf("ListCategories = %v, want the categories and the default", cats.Msg)
				}

				_, err = client.GetCodename(t.Context(), connect.NewRequest(&codenamev1.NameRequest{Category: "nonsense"}))
				if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "science") {
					t.Errorf("unknown category: %v, want InvalidArgument naming the valid categories", err)
				}
			})
		}
	}
}

func TestConnectServerStream(t *testing.T) {
	ts := startConnectServer(t, gateway.Options{})
	for _, p := range browserProtocols {
		t.Run(p.name, func(t *testing.T) {
			stream, err := streamClient(ts, p.opts).CallServerStream(t.Context(), connect.NewRequest(&codenamev1.NameRequest{Category: "space"}))
			if err != nil {
				t.Fatalf("CallServerStream: %v", err)
			}
			defer stream.Close()
			for i := range 3 {
				if !stream.Receive() {
					t.Fatalf("message %d: stream ended: %v", i, stream.Err())
				}
				if got := codename.CategoryOf(stream.Msg().GetName()); got != "space" {
					t.Errorf("message %d: %q is of category %q, want space", i, stream.Msg().GetName(), got)
				}
			}

			bad, err := streamClient(ts, p.opts).CallServerStream(t.Context(), connect.NewRequest(&codenamev1.NameRequest{Category: "nonsense"}))
			if err != nil {
				t.Fatalf("CallServerStream: %v", err)
			}
			defer bad.Close()
			if bad.Receive() {
				t.Fatalf("unknown category: got %v, want an error", bad.Msg())
			}
			if connect.CodeOf(bad.Err()) != connect.CodeInvalidArgument || !strings.Contains(bad.Err().Error(), "science") {
				t.Errorf("unknown category: %v, want InvalidArgument naming the valid categories", bad.Err())
			}
		})
	}
}

// TestConnectBidiIsRefused: a client that streams requests, as only a
// non-browser client can, gets its first category's codenames and then,
// at its second message, an error that names the WebSocket.
func TestConnectBidiIsRefused(t *testing.T) {
	ts := startConnectServer(t, gateway.Options{})
	for _, p := range browserProtocols {
		t.Run(p.name, func(t *testing.T) {
			stream := streamClient(ts, p.opts).CallBidiStream(t.Context())
			if err := stream.Send(&codenamev1.NameRequest{Category: "space"}); err != nil {
				t.Fatalf("Send: %v", err)
			}
			first, err := stream.Receive()
			if err != nil {
				t.Fatalf("Receive: %v", err)
			}
			if got := codename.CategoryOf(first.GetName()); got != "space" {
				t.Errorf("%q is of category %q, want space", first.GetName(), got)
			}
			if err := stream.Send(&codenamev1.NameRequest{Category: "science"}); err != nil {
				t.Fatalf("second Send: %v", err)
			}
			for range 1000 {
				if _, err = stream.Receive(); err != nil {
					break
				}
			}
			if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "WebSocket") {
				t.Errorf("after a second message: %v, want InvalidArgument naming the WebSocket", err)
			}
			_ = stream.CloseRequest()
			_ = stream.CloseResponse()
		})
	}
}

// TestConnectRefusesUnknownJSONFields: a misspelt field is an error, as on
// the REST routes, in the Connect protocol's JSON error form.
func TestConnectRefusesUnknownJSONFields(t *testing.T) {
	ts := startConnectServer(t, gateway.Options{})
	req, err := http.NewRequestWithContext(t.Context(), "POST", ts.URL+codenamev1connect.CodenameCreatorGetCodenameProcedure, strings.NewReader(`{"categroy":"science"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Code, Message string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest || body.Code != "invalid_argument" || !strings.Contains(body.Message, `unknown field "categroy"`) {
		t.Errorf("unknown field: %s %+v, want 400 invalid_argument naming the field", resp.Status, body)
	}
}

func TestConnectCORS(t *testing.T) {
	const allowed = "https://app.example"
	ts := startConnectServer(t, gateway.Options{CORSOrigins: []string{allowed}})
	preflight := func(t *testing.T, origin string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), "OPTIONS", ts.URL+codenamev1connect.CodenameCreatorGetCodenameProcedure, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type,connect-protocol-version,x-api-key")
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	t.Run("allowed origin", func(t *testing.T) {
		resp := preflight(t, allowed)
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != allowed {
			t.Fatalf("preflight: %s, Access-Control-Allow-Origin %q; want 204 allowing %s", resp.Status, resp.Header.Get("Access-Control-Allow-Origin"), allowed)
		}
		for _, h := range []string{"Content-Type", "Connect-Protocol-Version", "X-Api-Key", "X-Grpc-Web"} {
			if !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), h) {
				t.Errorf("Access-Control-Allow-Headers = %q, want %s in it", resp.Header.Get("Access-Control-Allow-Headers"), h)
			}
		}
		if got := resp.Header.Get("Access-Control-Allow-Methods"); got != "POST" {
			t.Errorf("Access-Control-Allow-Methods = %q, want POST", got)
		}
		// The call itself: readable by the page, grpc-status included.
		var header http.Header
		client := codenamev1connect.NewCodenameCreatorClient(ts.Client(), ts.URL, connect.WithGRPCWeb(), connect.WithInterceptors(originInterceptor(allowed, &header)))
		if _, err := client.GetCodename(t.Context(), connect.NewRequest(&codenamev1.NameRequest{Category: "science"})); err != nil {
			t.Fatal(err)
		}
		if header.Get("Access-Control-Allow-Origin") != allowed || !strings.Contains(header.Get("Access-Control-Expose-Headers"), "Grpc-Status") {
			t.Errorf("call from %s: Access-Control-Allow-Origin %q, Expose-Headers %q; want the origin, and Grpc-Status exposed", allowed,
				header.Get("Access-Control-Allow-Origin"), header.Get("Access-Control-Expose-Headers"))
		}
	})
	t.Run("other origin", func(t *testing.T) {
		resp := preflight(t, "https://elsewhere.example")
		for k := range resp.Header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("preflight from another origin got %s: %q", k, resp.Header.Get(k))
			}
		}
		if resp.StatusCode == http.StatusNoContent {
			t.Errorf("preflight from another origin: %s, want no success", resp.Status)
		}
	})
	t.Run("none by default", func(t *testing.T) {
		ts := startConnectServer(t, gateway.Options{})
		req, err := http.NewRequestWithContext(t.Context(), "OPTIONS", ts.URL+codenamev1connect.CodenameCreatorGetCodenameProcedure, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", allowed)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" || resp.StatusCode == http.StatusNoContent {
			t.Errorf("preflight with no origins configured: %s, Access-Control-Allow-Origin %q; want no CORS", resp.Status, v)
		}
	})
}

// originInterceptor sends Origin, as a browser would, and keeps the
// response headers.
func originInterceptor(origin string, header *http.Header) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Origin", origin)
			res, err := next(ctx, req)
			if res != nil {
				*header = res.Header()
			}
			return res, err
		}
	}
}
