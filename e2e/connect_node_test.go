package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"
)

// TestGRPCWebFromNode calls the service through HAProxy with the official
// gRPC-Web client for Node (@connectrpc/connect-node) and the code
// protoc-gen-es generates from the proto (web/clients, installed by
// scripts/setup.sh test): unary, the server stream, an unknown category
// and a missing key, over TLS with HTTP/1.1 and HTTP/2 and over cleartext
// HTTP/1.1.
func TestGRPCWebFromNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH (scripts/setup.sh test installs it): %v", err)
	}
	dir := filepath.Join(repoRoot, "web/clients")
	if _, err := os.Stat(filepath.Join(dir, "node_modules/@connectrpc/connect-node")); err != nil {
		t.Fatalf("web/clients has no node_modules (scripts/setup.sh test runs npm ci there): %v", err)
	}
	s := startWith(t, 1, testKey)
	for _, tt := range []struct{ name, url, httpVersion string }{
		{"https-h1", s.httpsURL(""), "1.1"},
		{"https-h2", s.httpsURL(""), "2"},
		{"http-h1", s.httpURL(""), "1.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), node, "grpcweb-node.mjs", tt.url, tt.httpVersion, s.caFile, testKey)
			cmd.Dir = dir
			var stderr strings.Builder
			cmd.Stderr = &stderr
			b, err := cmd.Output()
			if err != nil {
				t.Fatalf("node grpcweb-node.mjs: %v\n%s%s", err, b, stderr.String())
			}
			var got struct {
				Unary          string
				Stream         []string
				Unknown, Nokey int
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("output %q: %v", b, err)
			}
			if categoryOf(got.Unary) != "science" {
				t.Errorf("getCodename(science) = %q", got.Unary)
			}
			if len(got.Stream) != 3 {
				t.Errorf("stream gave %q, want 3 codenames", got.Stream)
			}
			for _, name := range got.Stream {
				if categoryOf(name) != "space" {
					t.Errorf("stream of space gave %q", name)
				}
			}
			if connect.Code(got.Unknown) != connect.CodeInvalidArgument || connect.Code(got.Nokey) != connect.CodeUnauthenticated {
				t.Errorf("unknown category: code %v, no key: code %v; want invalid_argument and unauthenticated", connect.Code(got.Unknown), connect.Code(got.Nokey))
			}
		})
	}
}
