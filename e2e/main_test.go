package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/csv"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/poll"
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

// system is a running stack and the addresses to reach it.
type system struct {
	*stack.Stack
	cfg    stack.Config
	log    *syncBuffer
	caFile string
	roots  *x509.CertPool
}

// startSystem starts a stack of its own on free ports: one replica, no API
// key. Tests that kill or restart parts use it; the others share one
// through shared.
func startSystem(t testing.TB, env ...string) *system {
	t.Helper()
	return startSystemIn(t, t.TempDir(), 1, "", env...)
}

// startWith starts a stack with the given number of replicas and API key
// (none if empty).
func startWith(t testing.TB, replicas int, apiKey string, env ...string) *system {
	t.Helper()
	return startSystemIn(t, t.TempDir(), replicas, apiKey, env...)
}

// startSystemIn starts a stack whose state folder (TLS files) is dir. It is
// stopped when the test ends, and its output is shown if the test failed.
func startSystemIn(t testing.TB, dir string, replicas int, apiKey string, env ...string) *system {
	t.Helper()
	return startFrom(t, defaultHAProxyConfig(), dir, replicas, apiKey, env...)
}

// startFrom is startSystemIn with HAProxy reading the config file at
// haproxyConfig.
func startFrom(t testing.TB, haproxyConfig, dir string, replicas int, apiKey string, env ...string) *system {
	t.Helper()
	s, err := newSystemFrom(haproxyConfig, dir, replicas, apiKey, env...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		if t.Failed() {
			t.Logf("output of the stack:\n%s", s.log.String())
		}
	})
	return s
}

func newSystem(stateDir string, env ...string) (*system, error) {
	return newSystemWith(stateDir, 1, "", env...)
}

// newSystemWith starts a stack with the given number of replicas and API
// key (none if empty).
func newSystemWith(stateDir string, replicas int, apiKey string, env ...string) (*system, error) {
	return newSystemFrom(defaultHAProxyConfig(), stateDir, replicas, apiKey, env...)
}

// defaultHAProxyConfig is the repository's haproxy/haproxy.cfg.
func defaultHAProxyConfig() string { return filepath.Join(repoRoot, "haproxy/haproxy.cfg") }

// newSystemFrom is newSystemWith with HAProxy reading the config file at
// haproxyConfig.
func newSystemFrom(haproxyConfig, stateDir string, replicas int, apiKey string, env ...string) (*system, error) {
	log := new(syncBuffer)
	cfg := stack.Config{
		BinDir:        binDir,
		HAProxyConfig: haproxyConfig,
		StateDir:      stateDir,
		APIKey:        apiKey,
		// A short drain delay keeps the many stops of a test run quick;
		// the drain tests set their own.
		Env:    append([]string{"CODENAME_STREAM_INTERVAL=" + streamInterval.String(), "CODENAME_DRAIN_DELAY=200ms"}, env...),
		Output: log,
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := stack.StartOnFreePorts(ctx, cfg, replicas)
	if err != nil {
		return nil, fmt.Errorf("start stack: %w\n%s", err, log.String())
	}
	s, err := systemOf(st, log)
	if err == nil {
		err = waitBackendsChecked(st.Config().StatsAddr, 20*time.Second)
	}
	if err != nil {
		st.Stop()
		return nil, fmt.Errorf("%w\n%s", err, log.String())
	}
	return s, nil
}

// waitBackendsChecked waits until HAProxy's health checks have passed on
// every backend server. The stack is ready once /healthz answers through
// be_rest, but a test that opens a stream at once goes to be_rest_stream
// or be_grpc_stream, whose first checks may not have run yet or may have
// just failed (a process still starting, or starved for a moment on a
// loaded machine), and then gets HAProxy's 503. A stats page that asks for
// a password (the tests of that) cannot be read, and is not waited on.
func waitBackendsChecked(statsAddr string, limit time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	var pending []string
	_, ok := poll.Until(limit, func() bool {
		resp, err := client.Get("http://" + statsAddr + "/stats;csv")
		if err != nil {
			pending = []string{err.Error()}
			return false
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized {
			pending = nil
			return true
		}
		rows, err := csv.NewReader(resp.Body).ReadAll()
		if err != nil || len(rows) < 2 {
			pending = []string{fmt.Sprintf("stats CSV: %v", err)}
			return false
		}
		col := map[string]int{}
		for i, name := range rows[0] {
			col[strings.TrimPrefix(name, "# ")] = i
		}
		pending = pending[:0]
		for _, r := range rows[1:] {
			px, sv, st, check := r[col["pxname"]], r[col["svname"]], r[col["status"]], r[col["check_status"]]
			if !strings.HasPrefix(px, "be_") || sv == "BACKEND" || st == "MAINT" || st == "no check" {
				continue
			}
			if st != "UP" || !strings.Contains(check, "OK") {
				pending = append(pending, fmt.Sprintf("%s/%s %s (%s)", px, sv, st, check))
			}
		}
		return len(pending) == 0
	})
	if !ok {
		return fmt.Errorf("HAProxy's checks have not passed on every backend server after %v: %s", limit, strings.Join(pending, ", "))
	}
	return nil
}

// systemOf wraps a started stack, whose output goes to log, for the tests'
// helpers: they trust its development CA, as a user given the CA file
// would.
func systemOf(st *stack.Stack, log *syncBuffer) (*system, error) {
	pem, err := os.ReadFile(st.TLS.CA)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return &system{Stack: st, cfg: st.Config(), log: log, caFile: st.TLS.CA, roots: roots}, nil
}

var (
	sharedOnce sync.Once
	sharedSys  *system
	sharedErr  error
	sharedDir  string
)

// shared returns the stack that tests which only send requests share.
func shared(t testing.TB) *system {
	t.Helper()
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "codename-e2e-state-")
		if sharedErr == nil {
			sharedSys, sharedErr = newSystem(sharedDir)
		}
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedSys
}

func stopShared() {
	if sharedSys != nil {
		if err := sharedSys.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop shared stack:", err)
		}
	}
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
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
