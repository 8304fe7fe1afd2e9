package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/runtest"
	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// repoRoot is the repository, seen from this package's folder.
var repoRoot, _ = filepath.Abs("..")

// binDir holds the binaries built once for all tests by TestMain.
var binDir string

// streamInterval is short so that stream tests see many codenames quickly.
const streamInterval = 100 * time.Millisecond

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "codename-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/...")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		return 1
	}
	binDir = dir
	code := m.Run()
	stopShared()
	return code
}

// system is a running stack and the addresses to reach it; start_test.go
// starts it.
type system struct {
	*stack.Stack // nil for HAProxy started alone (edgeOnly)
	cfg          stack.Config
	log          *syncBuffer
	caFile       string
	roots        *x509.CertPool
	// edge is HAProxy started alone, with edgeOnly.
	edge *toolProc
	// hosts is the network of hosts the system runs on, with onHosts.
	hosts *hostNet
}

// tlsConfig trusts the stack's development CA, as a user given the CA file
// would.
func (s *system) tlsConfig(nextProtos ...string) *tls.Config {
	return &tls.Config{RootCAs: s.roots, ServerName: "localhost", NextProtos: nextProtos}
}

// httpsURL and httpURL address HAProxy's two listeners.
func (s *system) httpsURL(path string) string { return "https://" + s.cfg.HTTPSAddr + path }
func (s *system) httpURL(path string) string  { return "http://" + s.cfg.HTTPAddr + path }

// grpcConn dials HAProxy with gRPC over TLS (secure) or h2c.
func (s *system) grpcConn(t testing.TB, secure bool) *grpc.ClientConn {
	t.Helper()
	creds, addr := insecure.NewCredentials(), s.cfg.HTTPAddr
	if secure {
		creds, addr = credentials.NewTLS(s.tlsConfig()), s.cfg.HTTPSAddr
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func (s *system) grpcClient(t testing.TB, secure bool) codenamev1.CodenameCreatorClient {
	return codenamev1.NewCodenameCreatorClient(s.grpcConn(t, secure))
}

// transport names a way of speaking HTTP to HAProxy.
type transport struct {
	name      string
	url       func(s *system, path string) string
	proto     int // the HTTP major version the response must come back with
	configure func(s *system, tr *http.Transport)
}

// transports are the four ways a REST client can reach the edge.
var transports = []transport{
	{"https-h1", (*system).httpsURL, 1, func(s *system, tr *http.Transport) {
		tr.TLSClientConfig = s.tlsConfig("http/1.1")
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetHTTP1(true)
	}},
	{"https-h2", (*system).httpsURL, 2, func(s *system, tr *http.Transport) {
		tr.TLSClientConfig = s.tlsConfig()
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetHTTP2(true)
	}},
	{"http-h1", (*system).httpURL, 1, func(s *system, tr *http.Transport) {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetHTTP1(true)
	}},
	{"h2c", (*system).httpURL, 2, func(s *system, tr *http.Transport) {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}},
}

// client returns an HTTP client for this transport, closed with the test.
func (tp transport) client(t testing.TB, s *system) *http.Client {
	tr := &http.Transport{ForceAttemptHTTP2: false}
	tp.configure(s, tr)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// logLine returns the first line the child named child (such as
// "haproxy") has written that holds every one of parts, or "" if none has.
func (s *system) logLine(child string, parts ...string) string {
	for _, line := range strings.Split(s.log.String(), "\n") {
		rest, ok := strings.CutPrefix(line, child+" |")
		if ok && !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(rest, p) }) {
			return line
		}
	}
	return ""
}

// syncBuffer collects the stack's output from several goroutines.
type syncBuffer = runtest.Buffer
