package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// grpcFrame is a NameRequest in gRPC's length-prefixed framing.
func grpcFrame(t *testing.T, category string) []byte {
	t.Helper()
	msg, err := proto.Marshal(&codenamev1.NameRequest{Category: category})
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(msg)))
	return append(frame, msg...)
}

// TestContentTypeRouting checks which backend HAProxy picks for each
// content type. The gRPC server answers in application/grpc; the gateway
// answers in JSON, or in gRPC-Web to gRPC-Web (e2e/connect_test.go).
func TestContentTypeRouting(t *testing.T) {
	s := shared(t)
	const grpcPath = "/codename.v1.CodenameCreator/GetCodename"
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		wantBackend string
	}{
		{"gRPC", "POST", grpcPath, "application/grpc", "grpc"},
		{"gRPC proto codec", "POST", grpcPath, "application/grpc+proto", "grpc"},
		{"gRPC with a parameter", "POST", grpcPath, "application/grpc;foo=bar", "grpc"},
		{"gRPC-Web", "POST", grpcPath, "application/grpc-web", "rest"},
		{"gRPC-Web proto", "POST", grpcPath, "application/grpc-web+proto", "rest"},
		{"gRPC-Web text", "POST", grpcPath, "application/grpc-web-text", "rest"},
		{"a look-alike", "POST", grpcPath, "application/grpcx", "rest"},
		{"JSON", "POST", "/v1/codename", "application/json", "rest"},
		{"JSON on a gRPC path", "POST", grpcPath, "application/json", "rest"},
		{"no content type", "GET", "/v1/codename", "", "rest"},
	}
	for _, tp := range []transport{transports[1], transports[3]} {
		t.Run(tp.name, func(t *testing.T) {
			c := tp.client(t, s)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					var body io.Reader = http.NoBody
					if tt.method == "POST" {
						switch {
						case strings.HasPrefix(tt.contentType, "application/grpc-web-text"):
							body = strings.NewReader(base64.StdEncoding.EncodeToString(grpcFrame(t, "space")))
						case strings.HasPrefix(tt.contentType, "application/grpc"):
							body = bytes.NewReader(grpcFrame(t, "space"))
						default:
							body = strings.NewReader(`{"category":"space"}`)
						}
					}
					req, err := http.NewRequestWithContext(t.Context(), tt.method, tp.url(s, tt.path), body)
					if err != nil {
						t.Fatal(err)
					}
					if tt.contentType != "" {
						req.Header.Set("Content-Type", tt.contentType)
					}
					req.Header.Set("TE", "trailers")
					resp, err := c.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					answer, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil {
						t.Fatal(err)
					}

					got := "rest"
					if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/grpc-web") {
						// The gateway's gRPC-Web: the status is in the
						// trailers frame at the end of the body.
						if strings.HasPrefix(ct, "application/grpc-web-text") {
							answer, err = decodeBase64Groups(answer)
						}
						if err != nil || !bytes.Contains(answer, []byte("grpc-status: 0")) {
							t.Errorf("gRPC-Web answer %q (%v), want grpc-status: 0 in its trailers", answer, err)
						}
					} else if strings.HasPrefix(ct, "application/grpc") {
						got = "grpc"
						if st := resp.Trailer.Get("Grpc-Status"); st != "0" {
							t.Errorf("grpc-status = %q, want 0: the gRPC server should have answered", st)
						}
					} else if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
						t.Errorf("Content-Type = %q, want the gateway's application/json", ct)
					}
					if got != tt.wantBackend {
						t.Errorf("Content-Type %q went to %s, want %s", tt.contentType, got, tt.wantBackend)
					}
				})
			}
		})
	}
}
