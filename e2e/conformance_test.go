package e2e

// Conformance: suites written by others, not by us, prove that the edge
// (HAProxy with haproxy/haproxy.cfg, unchanged) speaks gRPC and HTTP/2
// correctly. grpc-go's interop client runs its standard cases through the
// edge against grpc-go's interop server, and h2spec runs its HTTP/2 cases
// against both of the edge's listeners with the real system behind them.
// scripts/setup.sh test installs the three tools into bin/, and
// scripts/test.sh puts bin/ on PATH.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/poll"
)

// interopCases are grpc-go's standard interop cases that need no cloud
// credentials: the set every gRPC implementation is held to. method is a
// call of the case that HAProxy must log on the stream backend, proof that
// the case went through the edge.
var interopCases = []struct{ name, method string }{
	{"empty_unary", "TestService/EmptyCall"},
	{"large_unary", "TestService/UnaryCall"},
	{"client_streaming", "TestService/StreamingInputCall"},
	{"server_streaming", "TestService/StreamingOutputCall"},
	{"ping_pong", "TestService/FullDuplexCall"},
	{"empty_stream", "TestService/FullDuplexCall"},
	// The call has a 1 ms deadline, which often ends it in the client
	// before HAProxy has a request to log.
	{"timeout_on_sleeping_server", ""},
	// Cancelled at once: HAProxy mostly logs it with no server chosen, but
	// when the cancel reaches it in the same read as the request (seen
	// under load), it drops the stream unlogged.
	{"cancel_after_begin", ""},
	{"cancel_after_first_response", "TestService/FullDuplexCall"},
	{"status_code_and_message", "TestService/FullDuplexCall"},
	{"special_status_message", "TestService/UnaryCall"},
	{"custom_metadata", "TestService/FullDuplexCall"},
	{"unimplemented_method", "TestService/UnimplementedCall"},
	{"unimplemented_service", "UnimplementedService/UnimplementedCall"},
}

// TestInteropThroughEdge runs grpc-go's interop client against grpc-go's
// interop server through HAProxy, over TLS and over h2c: every case must
// pass, so the edge carries unary calls, streams in both directions,
// deadlines, cancellation, status codes and messages, and metadata (headers
// and trailers) unchanged.
//
// The interop methods (grpc.testing.TestService/*) are not among the unary
// calls haproxy.cfg names, so they go to be_grpc_stream, the path every
// stream of the real service takes. The interop server stands where the
// gRPC server replica stands (CODENAME_GRPC_ADDR); the gateway address
// points at a port nobody listens on, so the REST backends are simply down.
//
// haproxy.cfg checks a gRPC replica with an HTTP/1.1 GET /healthz on the
// replica's own port, which codename-server answers (server/split.go tells
// the HTTP/2 preface from HTTP/1.1 on one port); grpc-go's interop server
// does not, so HAProxy would mark it down and answer every call 503
// (UNAVAILABLE). Rather than change the file under test, the interop
// server is put behind healthSplit, which does what server/split.go does:
// HTTP/2 connections are relayed byte for byte to the interop server, and
// the health check is answered on the same port.
func TestInteropThroughEdge(t *testing.T) {
	interopServer := lookTool(t, "interop-server")
	interopClient := lookTool(t, "interop-client")

	addrs := freeAddrList(t, 2)
	serverAddr, noGateway := addrs[0], addrs[1]

	// grpc-go's interop server listens on every interface at -port.
	_, port, _ := net.SplitHostPort(serverAddr)
	srv := startToolProc(t, "interop-server", []string{interopServer, "-port", port}, os.Environ())
	poll.For(t, "interop-server at "+serverAddr, 10*time.Second, func() error { return srv.accepts(serverAddr) })

	front := newHealthSplit(t, serverAddr)

	s := start(t, edgeOnly(front.addr(), noGateway))
	// Both gRPC backends must have passed a health check, or the first
	// cases would race HAProxy's view of the replica.
	if err := s.waitChecked(15*time.Second, [2]string{"be_grpc", "grpc1"}, [2]string{"be_grpc_stream", "grpc1"}); err != nil {
		t.Fatalf("HAProxy's gRPC servers not up: %v\n%s", err, outputTail(s.log.String(), 4000))
	}

	_, httpsPort, _ := net.SplitHostPort(s.cfg.HTTPSAddr)
	_, httpPort, _ := net.SplitHostPort(s.cfg.HTTPAddr)
	listeners := []struct {
		name, frontend string // how HAProxy's log names the listener
		args           []string
	}{
		// -ca_file is read only together with -use_test_ca. The address,
		// not a name, since a name lookup here can stall; the certificate
		// is checked for localhost.
		{"tls", "fe_main~ ", []string{"-use_tls", "-use_test_ca", "-ca_file", s.caFile, "-server_host", "127.0.0.1", "-server_host_override", "localhost", "-server_port", httpsPort}},
		// h2c with prior knowledge on the port shared with HTTP/1.1.
		{"h2c", "fe_main ", []string{"-server_host", "127.0.0.1", "-server_port", httpPort}},
	}
	passed := map[string]int{}
	for _, l := range listeners {
		t.Run(l.name, func(t *testing.T) {
			for _, tc := range interopCases {
				t.Run(tc.name, func(t *testing.T) {
					// HAProxy logs each call as it starts.
					calls := func() int {
						return countLogLines(s.log.String(), l.frontend, " be_grpc_stream/", "/grpc.testing."+tc.method+" ")
					}
					before := calls()
					runInteropCase(t, interopClient, tc.name, l.args)
					if tc.method != "" {
						err := poll.Check(2*time.Second, func() error {
							if calls() == before {
								return fmt.Errorf("HAProxy logged no %s call on be_grpc_stream from %s", tc.method, l.name)
							}
							return nil
						})
						if err != nil {
							t.Error(err)
						}
					}
					if !t.Failed() {
						passed[l.name]++
					}
				})
			}
		})
	}
	for _, l := range listeners {
		t.Logf("interop through %s: %d of %d cases passed", l.name, passed[l.name], len(interopCases))
	}
}

// countLogLines counts the lines of log that contain every one of parts.
func countLogLines(log string, parts ...string) int {
	n := 0
	for line := range strings.Lines(log) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

// runInteropCase runs one interop case and fails t unless the client exits
// 0 having logged that the case is done.
func runInteropCase(t *testing.T, client, testCase string, args []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, client, append([]string{"-test_case=" + testCase}, args...)...)
	// At info level the client logs "<Case> done" after its checks pass.
	cmd.Env = append(os.Environ(), "GRPC_GO_LOG_SEVERITY_LEVEL=info", "GRPC_GO_LOG_VERBOSITY_LEVEL=0")
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte(" done")) {
		// A failed large case prints its payload: keep the end.
		t.Errorf("interop-client -test_case=%s: %v (context: %v)\n%s", testCase, err, ctx.Err(), outputTail(string(out), 4000))
	}
}

// h2specKnown lists the h2spec cases that are expected to fail on one
// listener, each with the reason. The test fails when a case not listed
// here fails, and also when a listed one passes or is no longer run, so
// that the list stays true. actual is text that must appear in h2spec's
// report of the failure, so that the case fails for the reason given.
var h2specKnown = []struct {
	listener, id, actual, why string
}{
	{
		listener: "h2c",
		id:       "http2/3.5/2", // Sends invalid connection preface
		actual:   "the frame header looked like an HTTP/1.1 header",
		why: "The cleartext bind serves HTTP/1.1 and h2c prior knowledge on one port " +
			"(haproxy.cfg: a bind with neither alpn nor proto). HAProxy gives a connection to its " +
			"HTTP/2 mux only when it starts with the exact 24-byte preface " +
			"\"PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n\"; anything else is HTTP/1.x to it. " +
			"\"INVALID CONNECTION PREFACE\\r\\n\\r\\n\" is thus an HTTP/1.1 request line with no valid " +
			"version, and HAProxy does what an HTTP/1.1 server must: it answers \"HTTP/1.1 400 Bad " +
			"request\" and closes the connection. (That 400 is HAProxy's built-in HTML page, not the " +
			"http-error JSON of haproxy.cfg: the HTTP/1 layer raises it before there is a request for " +
			"http-error to apply to.) h2spec wants the connection closed with no bytes first: it " +
			"reads \"HTTP/1.1 \" as an HTTP/2 frame header (a 4,740,180-byte frame), meets the close " +
			"while reading that payload, and reports an error instead of a clean close. The connection is still terminated, as RFC 9113 " +
			"section 3.4 requires; the 400 before the close is the price of sharing the port, and " +
			"TestH2SpecEdge checks both facts directly. On the TLS listener ALPN chooses h2 before " +
			"any byte of HTTP, and the case passes there.",
	},
}

// TestH2SpecEdge runs h2spec (its generic, RFC 7540 and RFC 7541 (HPACK)
// cases; the optional strict ones excepted) against HAProxy's TLS listener and its cleartext
// listener, with the real system behind them. Every case must pass but the
// known differences in h2specKnown.
func TestH2SpecEdge(t *testing.T) {
	h2spec := lookTool(t, "h2spec")
	s := start(t)

	listeners := []struct {
		name, addr string
		args       []string
	}{
		{"tls", s.cfg.HTTPSAddr, []string{"-t", "-k"}},
		{"h2c", s.cfg.HTTPAddr, nil},
	}
	results := make([]map[string]h2specResult, len(listeners))
	// The two runs are independent: run them side by side.
	t.Run("run", func(t *testing.T) {
		for i, l := range listeners {
			t.Run(l.name, func(t *testing.T) {
				t.Parallel()
				results[i] = runH2Spec(t, h2spec, l.addr, l.args)
			})
		}
	})
	if t.Failed() {
		return
	}

	for i, l := range listeners {
		got := results[i]
		var pass, fail, knownFail, skip int
		known := map[string]bool{}
		for _, k := range h2specKnown {
			if k.listener != l.name {
				continue
			}
			known[k.id] = true
			r, ok := got[k.id]
			switch {
			case !ok:
				t.Errorf("%s: known difference %s was not run by h2spec: update h2specKnown", l.name, k.id)
			case !r.failed:
				t.Errorf("%s: known difference %s (%s) now passes: remove it from h2specKnown", l.name, k.id, r.desc)
			case !strings.Contains(r.report, k.actual):
				t.Errorf("%s: known difference %s (%s) fails for another reason than the one given (want %q in):\n%s", l.name, k.id, r.desc, k.actual, r.report)
			default:
				t.Logf("%s: %s (%s) fails as known: %s", l.name, k.id, r.desc, k.why)
			}
		}
		for _, id := range sortedIDs(got) {
			r := got[id]
			switch {
			case r.skipped:
				skip++
			case r.failed:
				fail++
				if known[id] {
					knownFail++
				} else {
					t.Errorf("%s: h2spec %s %q failed:\n%s", l.name, id, r.desc, r.report)
				}
			default:
				pass++
			}
		}
		t.Logf("h2spec against %s (%s): %d cases, %d passed, %d failed (%d known), %d skipped",
			l.name, l.addr, len(got), pass, fail, knownFail, skip)
		if pass == 0 {
			t.Errorf("%s: no h2spec case passed", l.name)
		}
	}

	// The known difference on the shared port, checked directly: the
	// invalid preface gets an HTTP/1.1 400 and the connection is closed.
	t.Run("invalid preface on the shared port", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", s.cfg.HTTPAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, "INVALID CONNECTION PREFACE\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(conn) // ends only when HAProxy closes
		if err != nil {
			t.Fatalf("HAProxy did not close the connection: %v (read %q)", err, got)
		}
		if !bytes.HasPrefix(got, []byte("HTTP/1.1 400 ")) {
			t.Errorf("answer = %q, want an HTTP/1.1 400", got)
		}
	})
}

// h2specResult is one h2spec case as its JUnit report gives it.
type h2specResult struct {
	desc            string
	failed, skipped bool
	report          string
}

// runH2Spec runs h2spec against addr and returns its cases by ID
// ("http2/3.5/2"), read from its JUnit report.
func runH2Spec(t *testing.T, h2spec, addr string, extra []string) map[string]h2specResult {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(t.TempDir(), "junit.xml")
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	// -o: seconds h2spec waits for an answer. A few cases wait it out
	// on purpose, so it sets most of the run time.
	args := append([]string{"-h", host, "-p", port, "-o", "2", "-j", report}, extra...)
	cmd := exec.CommandContext(ctx, h2spec, args...)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	// h2spec exits non-zero when a case fails; the report says which.
	b, rerr := os.ReadFile(report)
	if rerr != nil {
		t.Fatalf("h2spec %s: %v (%v)\n%s", strings.Join(args, " "), rerr, err, outputTail(string(out), 8000))
	}
	got, perr := parseH2SpecJUnit(b)
	if perr != nil || len(got) == 0 {
		t.Fatalf("h2spec report: %v, %d cases\n%s", perr, len(got), outputTail(string(out), 8000))
	}
	return got
}

// parseH2SpecJUnit reads h2spec's JUnit report. A suite is a section of a
// spec ("http2/3.5"); its cases have no name, only their description, and
// h2spec numbers them in order from 1, which makes the ID it prints
// ("http2/3.5/2"). h2spec reports a failed check as <error> (its <failure>
// branch is never taken), so both count as failed.
func parseH2SpecJUnit(b []byte) (map[string]h2specResult, error) {
	var doc struct {
		Suites []struct {
			Package string `xml:"package,attr"`
			Cases   []struct {
				ClassName string  `xml:"classname,attr"`
				Failure   *string `xml:"failure"`
				Error     *string `xml:"error"`
				Skipped   *string `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	got := map[string]h2specResult{}
	for _, s := range doc.Suites {
		for i, c := range s.Cases {
			id := fmt.Sprintf("%s/%d", s.Package, i+1)
			if _, dup := got[id]; dup {
				return nil, fmt.Errorf("case %s twice in the report", id)
			}
			r := h2specResult{desc: c.ClassName, skipped: c.Skipped != nil}
			for _, text := range []*string{c.Failure, c.Error} {
				if text != nil {
					r.failed = true
					r.report += *text
				}
			}
			got[id] = r
		}
	}
	return got, nil
}

// healthSplit stands in front of a gRPC server that answers only HTTP/2,
// on a port of its own, as server/split.go does inside codename-server:
// a connection that starts with the HTTP/2 preface is relayed byte for
// byte to the server, and any other is read as an HTTP/1.1 request and
// answered 200 on GET /healthz while the server accepts connections. It
// stops when the test ends.
type healthSplit struct {
	*fakeBackend
	target string
}

func newHealthSplit(t *testing.T, target string) *healthSplit {
	t.Helper()
	h := &healthSplit{fakeBackend: listenFake(t), target: target}
	h.serve(h.route)
	return h
}

func (h *healthSplit) route(c net.Conn) {
	const preface = "PRI"
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	first := make([]byte, len(preface))
	if _, err := io.ReadFull(c, first); err != nil {
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if string(first) == preface {
		h.relay(c, first)
		return
	}
	h.answerHealth(c, first)
}

// relay copies both ways between c and a new connection to the target,
// passing on each side's end of stream, until both have ended.
func (h *healthSplit) relay(c net.Conn, first []byte) {
	up, err := net.DialTimeout("tcp", h.target, 5*time.Second)
	if err != nil {
		return
	}
	if !h.track(up) {
		return
	}
	defer h.untrack(up)
	if _, err := up.Write(first); err != nil {
		return
	}
	var both sync.WaitGroup
	copyHalf := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}
	both.Go(func() { copyHalf(up, c) })
	both.Go(func() { copyHalf(c, up) })
	both.Wait()
}

// answerHealth answers one HTTP/1.1 request and closes the connection.
func (h *healthSplit) answerHealth(c net.Conn, first []byte) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req, err := http.ReadRequest(bufio.NewReader(io.MultiReader(bytes.NewReader(first), c)))
	if err != nil {
		return
	}
	// The same answers as the real server's: HAProxy wants "SERVING".
	code, body := http.StatusNotFound, "not found\n"
	if req.Method == http.MethodGet && req.URL.Path == "/healthz" {
		code, body = http.StatusServiceUnavailable, "NOT_SERVING\n"
		if probe, err := net.DialTimeout("tcp", h.target, time.Second); err == nil {
			probe.Close()
			code, body = http.StatusOK, "SERVING\n"
		}
	}
	fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", code, http.StatusText(code), len(body), body)
}

// lookTool finds a conformance tool on PATH.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not on PATH (scripts/setup.sh test installs it into bin/): %v", name, err)
	}
	return p
}

// sortedIDs returns m's keys in order.
func sortedIDs[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
