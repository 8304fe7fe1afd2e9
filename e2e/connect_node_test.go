package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
)

// nodeRateLimit leaves each subtest room for its calls and refusals before
// it calls until the limit refuses one.
const nodeRateLimit = 40

// TestGRPCWebFromNode calls the service through HAProxy with the official
// gRPC-Web client for Node (@connectrpc/connect-node) and the code
// protoc-gen-es generates from the proto (web/clients, installed by
// scripts/setup.sh test): unary, the server stream, an unknown category
// and a missing key, over TLS with HTTP/1.1 and HTTP/2 and over cleartext
// HTTP/1.1. Then, in gRPC-Web and in Connect (JSON and binary), the codes
// @connectrpc/connect reads from HAProxy's own refusals (no key, a
// non-canonical path, over the rate limit): the ones connect-go reads in
// TestConnectRefusals.
func TestGRPCWebFromNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH (scripts/setup.sh test installs it): %v", err)
	}
	dir := filepath.Join(repoRoot, "web/clients")
	if _, err := os.Stat(filepath.Join(dir, "node_modules/@connectrpc/connect-node")); err != nil {
		t.Fatalf("web/clients has no node_modules (scripts/setup.sh test runs npm ci there): %v", err)
	}
	s := start(t, apiKey(testKey), withEnv("CODENAME_RATE_LIMIT="+strconv.Itoa(nodeRateLimit)))
	for _, tt := range []struct{ name, url, httpVersion, from string }{
		{"https-h1", s.httpsURL(""), "1.1", "127.0.0.41"},
		{"https-h2", s.httpsURL(""), "2", "127.0.0.42"},
		{"http-h1", s.httpURL(""), "1.1", "127.0.0.43"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The program's calls are bounded; this bounds the program.
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "grpcweb-node.mjs", tt.url, tt.httpVersion, s.caFile, testKey, tt.from)
			cmd.Dir = dir
			var stderr strings.Builder
			cmd.Stderr = &stderr
			b, err := cmd.Output()
			if err != nil {
				t.Fatalf("node grpcweb-node.mjs: %v\n%s%s", err, b, stderr.String())
			}
			var got struct {
				Unary             string
				Stream            []string
				Unknown, Nokey    int
				Refused           map[string]map[string]int
				PassedBeforeLimit int
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
			if got.PassedBeforeLimit == 0 || got.PassedBeforeLimit >= nodeRateLimit {
				t.Errorf("%d calls with the key passed before the rate limit of %d refused one", got.PassedBeforeLimit, nodeRateLimit)
			}
			// A refused Connect stream's code comes from the HTTP status
			// alone (haproxy.cfg says why).
			connectCodes := map[string]connect.Code{
				"nokey": connect.CodeUnauthenticated, "nokeyStream": connect.CodeUnauthenticated,
				"escaped": connect.CodeInvalidArgument, "escapedStream": connect.CodeInternal,
				"limited": connect.CodeResourceExhausted, "limitedStream": connect.CodeUnavailable,
			}
			want := map[string]map[string]connect.Code{
				"grpcweb": {
					"nokey": connect.CodeUnauthenticated, "nokeyStream": connect.CodeUnauthenticated,
					"escaped": connect.CodeInvalidArgument, "escapedStream": connect.CodeInvalidArgument,
					"limited": connect.CodeResourceExhausted, "limitedStream": connect.CodeResourceExhausted,
				},
				"connectjson":  connectCodes,
				"connectproto": connectCodes,
			}
			for protocol, codes := range want {
				for what, code := range codes {
					if got := connect.Code(got.Refused[protocol][what]); got != code {
						t.Errorf("%s, %s: %v, want %v", protocol, what, got, code)
					}
				}
			}
		})
	}
}
