package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/api/codename/v1/codenamev1connect"
)

// browserProtocols are the protocols of browsers' typed clients, as
// connect-go client options.
var browserProtocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{"Connect JSON", []connect.ClientOption{connect.WithProtoJSON()}},
	{"Connect proto", nil},
	{"gRPC-Web", []connect.ClientOption{connect.WithGRPCWeb()}},
}

// corsOrigin is the one origin the gateway is told to allow here.
const corsOrigin = "https://app.example"

// TestConnectThroughHAProxy calls the service through HAProxy with
// connect-go's clients, in each browser protocol, over each of the four
// ways to reach the edge: unary calls and the server stream, with and
// without the key, and an unknown category.
func TestConnectThroughHAProxy(t *testing.T) {
	s := start(t, apiKey(testKey), withEnv("CODENAME_CORS_ORIGINS="+corsOrigin))
	for _, tp := range transports {
		for _, p := range browserProtocols {
			t.Run(tp.name+"/"+p.name, func(t *testing.T) {
				hc := tp.client(t, s)
				client := codenamev1connect.NewCodenameCreatorClient(hc, tp.url(s, ""), p.opts...)

				req := connect.NewRequest(&codenamev1.NameRequest{Category: "science"})
				req.Header().Set("x-api-key", testKey)
				res, err := client.GetCodename(t.Context(), req)
				if err != nil {
					t.Fatalf("GetCodename: %v", err)
				}
				if got := categoryOf(res.Msg.GetName()); got != "science" {
					t.Errorf("GetCodename(science) = %q, of category %q", res.Msg.GetName(), got)
				}
				// Through the gateway like a REST call: its pool, its log,
				// and the caller's identity and trace on to the server.
				id := res.Header().Get("X-Request-Id")
				if !traceIDPattern.MatchString(id) {
					t.Fatalf("x-request-id %q, want a trace ID", id)
				}
				s.waitLine(t, "haproxy", " be_rest/", "/codename.v1.CodenameCreator/GetCodename", " trace_id="+id+" ")
				s.waitRESTLine(t, 1, "msg=request", "path=/codename.v1.CodenameCreator/GetCodename", "trace_id="+id)
				s.waitLine(t, "server-1", `msg="finished call"`, "grpc.method=GetCodename", "api_key=sha256:", "trace_id="+id)

				lreq := connect.NewRequest(&codenamev1.ListCategoriesRequest{})
				lreq.Header().Set("x-api-key", testKey)
				cats, err := client.ListCategories(t.Context(), lreq)
				if err != nil || len(cats.Msg.GetCategories()) < 2 {
					t.Errorf("ListCategories: %v, %v; want the categories", cats, err)
				}

				bad := connect.NewRequest(&codenamev1.NameRequest{Category: "nonsense"})
				bad.Header().Set("x-api-key", testKey)
				_, err = client.GetCodename(t.Context(), bad)
				if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "science") {
					t.Errorf("unknown category: %v, want InvalidArgument naming the valid categories", err)
				}

				_, err = client.GetCodename(t.Context(), connect.NewRequest(&codenamev1.NameRequest{Category: "science"}))
				if connect.CodeOf(err) != connect.CodeUnauthenticated {
					t.Errorf("no key: %v, want Unauthenticated", err)
				}

				streams := connect.NewClient[codenamev1.NameRequest, codenamev1.NameResult](hc, tp.url(s, codenamev1connect.CodenameCreatorKeepGettingCodenamesProcedure), p.opts...)
				sreq := connect.NewRequest(&codenamev1.NameRequest{Category: "space"})
				sreq.Header().Set("x-api-key", testKey)
				stream, err := streams.CallServerStream(t.Context(), sreq)
				if err != nil {
					t.Fatalf("CallServerStream: %v", err)
				}
				for i := range 3 {
					if !stream.Receive() {
						t.Fatalf("message %d: stream ended: %v", i, stream.Err())
					}
					if got := categoryOf(stream.Msg().GetName()); got != "space" {
						t.Errorf("message %d: %q is of category %q, want space", i, stream.Msg().GetName(), got)
					}
				}
				sid := stream.ResponseHeader().Get("X-Request-Id")
				_ = stream.Close()
				s.waitLine(t, "haproxy", " be_rest_stream/", "/codename.v1.CodenameCreator/KeepGettingCodenames", " trace_id="+sid+" ")

				unkeyed, err := streams.CallServerStream(t.Context(), connect.NewRequest(&codenamev1.NameRequest{Category: "space"}))
				if err == nil {
					if unkeyed.Receive() {
						t.Errorf("stream without a key: got %v, want Unauthenticated", unkeyed.Msg())
					}
					err = unkeyed.Err()
					_ = unkeyed.Close()
				}
				if connect.CodeOf(err) != connect.CodeUnauthenticated {
					t.Errorf("stream without a key: %v, want Unauthenticated", err)
				}
			})
		}
	}

	t.Run("gRPC-Web text", func(t *testing.T) {
		msg, err := proto.Marshal(&codenamev1.NameRequest{Category: "science"})
		if err != nil {
			t.Fatal(err)
		}
		frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
		req, err := http.NewRequestWithContext(t.Context(), "POST", s.httpURL(codenamev1connect.CodenameCreatorGetCodenameProcedure),
			strings.NewReader(base64.StdEncoding.EncodeToString(append(frame, msg...))))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/grpc-web-text")
		req.Header.Set("x-api-key", testKey)
		resp, err := transports[2].client(t, s).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		text, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		body, err := decodeBase64Groups(text)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/grpc-web-text+proto" || err != nil || len(body) < 5 {
			t.Fatalf("%s %q, body %q (%v); want 200 application/grpc-web-text+proto with a message", resp.Status, resp.Header.Get("Content-Type"), text, err)
		}
		var res codenamev1.NameResult
		n := binary.BigEndian.Uint32(body[1:5])
		if body[0] != 0 || int(n) > len(body)-5 || proto.Unmarshal(body[5:5+n], &res) != nil || categoryOf(res.GetName()) != "science" {
			t.Errorf("body %q, want a science codename", body)
		}
		if !bytes.Contains(body[5+n:], []byte("grpc-status: 0")) {
			t.Errorf("trailers %q, want grpc-status: 0", body[5+n:])
		}
	})

	t.Run("CORS preflight without a key", func(t *testing.T) {
		c := transports[1].client(t, s)
		for _, tt := range []struct {
			origin string
			want   string
		}{{corsOrigin, corsOrigin}, {"https://elsewhere.example", ""}} {
			req, err := http.NewRequestWithContext(t.Context(), "OPTIONS", s.httpsURL(codenamev1connect.CodenameCreatorGetCodenameProcedure), nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Origin", tt.origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type,x-api-key,x-grpc-web,x-user-agent")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Get("Access-Control-Allow-Origin")
			if got != tt.want {
				t.Errorf("preflight from %s: Access-Control-Allow-Origin %q, want %q", tt.origin, got, tt.want)
			}
			if tt.want != "" && (resp.StatusCode != http.StatusNoContent || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "X-Api-Key")) {
				t.Errorf("preflight from %s: %s, Allow-Headers %q; want 204 allowing X-Api-Key", tt.origin, resp.Status, resp.Header.Get("Access-Control-Allow-Headers"))
			}
		}
	})

	t.Run("native gRPC still goes to the gRPC server", func(t *testing.T) {
		client := s.grpcClient(t, true)
		ctx := metadata.NewOutgoingContext(t.Context(), metadata.Pairs("x-api-key", testKey))
		res, err := client.GetCodename(ctx, &codenamev1.NameRequest{Category: "animals"})
		if err != nil || categoryOf(res.GetName()) != "animals" {
			t.Fatalf("GetCodename over gRPC: %v, %v", res, err)
		}
		s.waitLine(t, "haproxy", " be_grpc/", "/codename.v1.CodenameCreator/GetCodename")
	})
}

// decodeBase64Groups decodes gRPC-Web text as a browser's client does: in
// groups of four characters, each on its own, since every flushed chunk
// may end in padding.
func decodeBase64Groups(text []byte) ([]byte, error) {
	var out []byte
	for len(text) >= 4 {
		b, err := base64.StdEncoding.DecodeString(string(text[:4]))
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
		text = text[4:]
	}
	if len(text) != 0 {
		return nil, fmt.Errorf("%d characters left over", len(text))
	}
	return out, nil
}
