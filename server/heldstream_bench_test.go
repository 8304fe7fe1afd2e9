package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/gateway"
	"github.com/codename-gateway/codename-gateway/internal/grpctest"
)

// heldStreams is how many streams BenchmarkHeldStream holds at once: enough
// that the per-stream cost stands out of the garbage collector's noise.
const heldStreams = 200

// Roles of the test binary when BenchmarkHeldStream runs it again as a
// process of its own, so that each process's memory is its own part only.
const (
	heldRoleEnv   = "CODENAME_HELD_ROLE"   // "server" or "client"
	heldKindEnv   = "CODENAME_HELD_KIND"   // a client's stream kind
	heldTargetEnv = "CODENAME_HELD_TARGET" // a client's target host:port
	// heldProfileEnv, if set, names a folder where the heap and goroutine
	// profiles of each process are written while the streams are held.
	heldProfileEnv = "CODENAME_HELD_PROFILE"
	// heldTLSEnv, if set, serves the separate gateway over TLS, as
	// HAProxy reaches it with backend TLS, and its clients call over TLS.
	heldTLSEnv = "CODENAME_HELD_TLS"
)

// heldKinds are the transports a client holds streams with: gRPC bidi
// straight to the server, and the gateway's three, over the protocols
// HAProxy speaks to the gateway (h2c, and HTTP/1.1 for a WebSocket).
var heldKinds = []string{"bidi", "NDJSON", "SSE", "WebSocket"}

// BenchmarkHeldStream measures the memory (live heap after a collection,
// and goroutine stacks) and goroutines that one held stream costs each
// process, per transport, with the gateway co-located (one process) or
// separate (gateway here, server in a child process). The clients run in
// a child process of their own. Each stream has had its first codename,
// then idles, as a browser's stream does between codenames. The loop is
// empty: with b.Loop the function runs once, and the figures are per
// stream, not per iteration.
func BenchmarkHeldStream(b *testing.B) {
	if os.Getenv(heldProfileEnv) != "" {
		runtime.MemProfileRate = 1 // every allocation, not one per 512 KB
	}
	for _, mode := range []string{"colocated", "separate"} {
		for _, kind := range heldKinds {
			b.Run(mode+"/"+kind, func(b *testing.B) {
				for b.Loop() {
				}
				h := startHeld(b, mode)
				base, baseSrv := h.measure(b)
				target := h.rest
				if kind == "bidi" {
					target = h.grpc
				}
				clients := startChild(b, "client", heldKindEnv+"="+kind, heldTargetEnv+"="+target)
				clients.expect(b, "held")
				held, heldSrv := h.measure(b)
				if dir := os.Getenv(heldProfileEnv); dir != "" {
					writeProfiles(b, filepath.Join(dir, mode+"-"+kind))
					if h.server != nil {
						h.server.ask(b, "profile "+filepath.Join(dir, mode+"-"+kind+"-server"))
					}
				}
				per := func(a, b memFigure) float64 { return float64(a.bytes-b.bytes) / heldStreams }
				if mode == "colocated" {
					b.ReportMetric(per(held, base), "process-B/stream")
				} else {
					b.ReportMetric(per(held, base), "gateway-B/stream")
					b.ReportMetric(per(heldSrv, baseSrv), "server-B/stream")
					b.ReportMetric(float64(heldSrv.goroutines-baseSrv.goroutines)/heldStreams, "server-goroutines/stream")
					b.ReportMetric(float64(heldSrv.stacks-baseSrv.stacks)/heldStreams, "server-stack-B/stream")
				}
				b.ReportMetric(float64(held.goroutines-base.goroutines)/heldStreams, "goroutines/stream")
				b.ReportMetric(float64(held.stacks-base.stacks)/heldStreams, "stack-B/stream")
				clients.stop(b)
			})
		}
	}
}

// memFigure is what a process holds: live heap plus stacks (and the
// stacks alone), and goroutines.
type memFigure struct{ bytes, stacks, goroutines int64 }

func measureSelf() memFigure {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memFigure{int64(m.HeapAlloc + m.StackInuse), int64(m.StackInuse), int64(runtime.NumGoroutine())}
}

// writeProfiles writes this process's heap profile to prefix.heap and its
// goroutines to prefix.goroutine.
func writeProfiles(t testing.TB, prefix string) {
	for _, name := range []string{"heap", "goroutine"} {
		f, err := os.Create(prefix + "." + name)
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// heldSetup is the processes a stream is held through.
type heldSetup struct {
	rest, grpc string // where clients connect
	server     *child // nil when the server is this process
}

func (h *heldSetup) measure(b *testing.B) (self, server memFigure) {
	self = measureSelf()
	if h.server != nil {
		line := h.server.ask(b, "mem")
		if _, err := fmt.Sscan(line, &server.bytes, &server.stacks, &server.goroutines); err != nil {
			b.Fatalf("server's figure %q: %v", line, err)
		}
	}
	return self, server
}

// startHeld starts the server and gateway of a mode: both here
// (co-located), or the gateway here and the server in a child.
func startHeld(b *testing.B, mode string) *heldSetup {
	restLis := listenTCP(b)
	if mode == "colocated" {
		grpcLis := listenTCP(b)
		grpctest.Run(b, grpcLis, 10*time.Second, func(ctx context.Context, lis net.Listener) error {
			return Serve(ctx, lis, Config{StreamInterval: time.Hour, DrainTimeout: time.Second, REST: &RESTConfig{Listener: restLis}})
		})
		return &heldSetup{rest: restLis.Addr().String(), grpc: grpcLis.Addr().String()}
	}
	ctx, cancel := context.WithCancel(b.Context())
	srv := startChild(b, "server")
	addr := srv.expect(b, "addr ")
	conn := dialTCP(b, addr)
	h, err := gateway.New(ctx, conn, gateway.Options{})
	if err != nil {
		b.Fatal(err)
	}
	// The connection up before the base figure, not in the first stream.
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		if os.Getenv(heldTLSEnv) != "" {
			// httptest's certificate, for localhost and 127.0.0.1.
			ts := httptest.NewUnstartedServer(nil)
			ts.StartTLS()
			cfg := &tls.Config{Certificates: ts.TLS.Certificates, NextProtos: []string{"h2", "http/1.1"}}
			ts.Close()
			done <- gateway.ServeTLS(ctx, restLis, h, gateway.Drain{Timeout: time.Second}, cfg)
			return
		}
		done <- gateway.Serve(ctx, restLis, h, gateway.Drain{Timeout: time.Second})
	}()
	b.Cleanup(func() { cancel(); waitErr(b, done); conn.Close(); srv.stop(b) })
	return &heldSetup{rest: restLis.Addr().String(), grpc: addr, server: srv}
}

func waitErr(b *testing.B, done <-chan error) {
	select {
	case err := <-done:
		if err != nil {
			b.Error(err)
		}
	case <-time.After(10 * time.Second):
		b.Error("did not stop within 10 s")
	}
}

// child is this test binary run again in one of the held-stream roles. It
// talks in lines: it writes what it has to say on stdout, reads questions
// on stdin, and ends when stdin closes.
type child struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	lines chan string
}

func startChild(b *testing.B, role string, env ...string) *child {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHeldStreamChild$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), heldRoleEnv+"="+role), env...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &child{cmd: cmd, in: in, lines: make(chan string)}
	go func() {
		defer close(c.lines)
		s := bufio.NewScanner(out)
		for s.Scan() {
			c.lines <- s.Text()
		}
	}()
	b.Cleanup(func() { c.stop(b) })
	return c
}

// expect waits for a line that starts with prefix, skipping the test
// framework's own, and returns the rest of it.
func (c *child) expect(b *testing.B, prefix string) string {
	timeout := time.After(time.Minute)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				b.Fatalf("%s ended before saying %q", c.cmd.Env[len(c.cmd.Env)-1], prefix)
			}
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				return rest
			}
		case <-timeout:
			b.Fatalf("no %q within a minute", prefix)
		}
	}
}

func (c *child) ask(b *testing.B, question string) string {
	if _, err := io.WriteString(c.in, question+"\n"); err != nil {
		b.Fatal(err)
	}
	return c.expect(b, question+" ")
}

// stop closes the child's stdin and waits for it to end, killing it by its
// PID after 10 s.
func (c *child) stop(b *testing.B) {
	if c.in == nil {
		return
	}
	c.in.Close()
	c.in = nil
	done := make(chan struct{})
	go func() {
		for range c.lines {
		}
		_ = c.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
		b.Error("child did not stop within 10 s")
	}
}

// TestHeldStreamChild is BenchmarkHeldStream's child process; run as a
// test on its own, it does nothing.
func TestHeldStreamChild(t *testing.T) {
	switch os.Getenv(heldRoleEnv) {
	case "server":
		heldServer(t)
	case "client":
		heldClients(t, os.Getenv(heldKindEnv), os.Getenv(heldTargetEnv))
	default:
		t.Skip("run by BenchmarkHeldStream")
	}
}

// heldServer serves gRPC until stdin closes, and answers "mem" with its
// memory figure.
func heldServer(t *testing.T) {
	if os.Getenv(heldProfileEnv) != "" {
		runtime.MemProfileRate = 1
	}
	lis := listenTCP(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, lis, Config{StreamInterval: time.Hour, DrainTimeout: time.Second}) }()
	fmt.Println("addr " + lis.Addr().String())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "mem" {
			m := measureSelf()
			fmt.Printf("mem %d %d %d\n", m.bytes, m.stacks, m.goroutines)
		}
		if prefix, ok := strings.CutPrefix(in.Text(), "profile "); ok {
			writeProfiles(t, prefix)
			fmt.Println("profile " + prefix + " written")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// heldClients opens heldStreams streams of kind to target, reads the first
// codename of each, says "held", and holds them until stdin closes.
func heldClients(t *testing.T, kind, target string) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	first := `{"category":"space"}`
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	// HAProxy's way to the gateway: h2c, many streams on a connection.
	// The connections are closed at the end, streams or not.
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	scheme, wsScheme := "http://", "ws://"
	var tlsConfig *tls.Config
	if os.Getenv(heldTLSEnv) != "" && kind != "bidi" {
		protocols = http.Protocols{}
		protocols.SetHTTP2(true)
		scheme, wsScheme = "https://", "wss://"
		tlsConfig = &tls.Config{InsecureSkipVerify: true} // httptest's certificate
	}
	var mu sync.Mutex
	var conns []net.Conn
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	h2c := &http.Client{Transport: &http.Transport{Protocols: &protocols, TLSClientConfig: tlsConfig,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := new(net.Dialer).DialContext(ctx, network, addr)
			if err == nil {
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
			return c, err
		}}}
	var conn *grpc.ClientConn
	if kind == "bidi" {
		var err error
		conn, err = grpc.NewClient("passthrough:///"+target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
	}
	for i := range heldStreams {
		sctx, end := context.WithCancel(ctx)
		closers = append(closers, end)
		var err error
		switch kind {
		case "bidi":
			err = heldBidi(sctx, codenamev1.NewCodenameCreatorClient(conn))
		case "NDJSON":
			var body *io.PipeWriter
			body, err = heldHTTP(sctx, h2c, http.MethodPost, scheme+target+"/v1/codenames:stream", first+"\n", `{"result"`)
			if body != nil {
				closers = append(closers, func() { body.Close() })
			}
		case "SSE":
			_, err = heldHTTP(sctx, h2c, http.MethodGet, scheme+target+"/v1/codenames:stream?category=space", "", `data: {"result"`)
		case "WebSocket":
			var ws *websocket.Conn
			// HTTP/1.1, a connection each, as HAProxy's `ws h1`.
			h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}}
			ws, _, err = websocket.Dial(sctx, wsScheme+target+"/v1/codenames:stream", &websocket.DialOptions{HTTPClient: h1})
			if err == nil {
				closers = append(closers, func() { ws.CloseNow() })
				if err = ws.Write(sctx, websocket.MessageText, []byte(first)); err == nil {
					_, _, err = ws.Read(sctx)
				}
			}
		}
		if err != nil {
			t.Fatalf("%s stream %d: %v", kind, i, err)
		}
	}
	fmt.Println("held")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

func heldBidi(ctx context.Context, client codenamev1.CodenameCreatorClient) error {
	stream, err := client.KeepGettingCodenames(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&codenamev1.NameRequest{Category: "space"}); err != nil {
		return err
	}
	_, err = stream.Recv()
	return err
}

// heldHTTP opens a streaming request, sending first in its body (kept
// open) when it is not empty, and reads up to a line that starts with want.
func heldHTTP(ctx context.Context, c *http.Client, method, url, first, want string) (*io.PipeWriter, error) {
	var body io.Reader
	var pw *io.PipeWriter
	if first != "" {
		var pr *io.PipeReader
		pr, pw = io.Pipe()
		body = pr
		go func() { _, _ = io.WriteString(pw, first) }()
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	if method == http.MethodGet {
		req.Header.Set("Accept", "text/event-stream")
	}
	resp, err := c.Do(req)
	if err != nil {
		return pw, err
	}
	if resp.StatusCode != http.StatusOK {
		return pw, fmt.Errorf("%s", resp.Status)
	}
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return pw, err
		}
		if bytes.HasPrefix(line, []byte(want)) {
			return pw, nil
		}
	}
}
