package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/poll"
	"github.com/codename-gateway/codename-gateway/internal/promtest"
)

// frontendSessions is how many client connections HAProxy's fe_main holds
// now, from its Prometheus exporter.
func (s *system) frontendSessions(t *testing.T) float64 {
	return metricValue(t, s.get(t, "http://"+s.cfg.StatsAddr+"/metrics"), "haproxy_frontend_current_sessions", map[string]string{"proxy": "fe_main"})
}

// slowhttptest runs Debian's slowhttptest with args (against loopback
// only, and bounded by its -l) and returns its output. It is stopped by its
// PID if it outlives ctx.
func slowhttptest(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "slowhttptest", args...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	return out.String(), err
}

// slowhttptestStats reads the per-second statistics slowhttptest writes
// with -g -o prefix (prefix.csv: seconds, closed, pending, connected, and
// "service available", which is 0 when its probe went unanswered).
func slowhttptestStats(prefix string) ([][5]int, error) {
	b, err := os.ReadFile(prefix + ".csv")
	if err != nil {
		return nil, err
	}
	var rows [][5]int
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n")[1:] {
		var r [5]int
		if _, err := fmt.Sscanf(line, "%d,%d,%d,%d,%d", &r[0], &r[1], &r[2], &r[3], &r[4]); err != nil {
			return nil, fmt.Errorf("%s.csv: %q: %v", prefix, line, err)
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s.csv holds no statistics", prefix)
	}
	return rows, nil
}

// TestHostileSlowClients: 300 slowloris connections (headers that never
// end) and 300 R-U-Dead-Yet connections (a body that trickles in) against
// the cleartext listener for 15 s, while well-behaved gRPC and REST callers
// go on being served without a single failure. HAProxy ends the slow
// requests itself (`timeout http-request 10s`, with the body buffered
// for the unary REST backend); no backend sees them.
func TestHostileSlowClients(t *testing.T) {
	if _, err := exec.LookPath("slowhttptest"); err != nil {
		t.Fatal("slowhttptest is not installed (scripts/setup.sh test installs it)")
	}
	// slowhttptest, its probe and the well-behaved callers connect from
	// one address; this test is about HAProxy's timeouts, so that address
	// may hold more than the public share of connections and requests
	// (TestFloodFromOtherAddresses tests the share).
	s := start(t, withEnv("CODENAME_CONN_PER_SOURCE=2000", "CODENAME_STREAMS_PER_SOURCE=2000"))
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()

	target := s.httpURL("/v1/codename")
	dir := t.TempDir()
	// 300 connections each, opened at 100 a second, each sending a little
	// more every 2 s, for 15 s; slowhttptest's own probe asks for the page
	// every second and gives up after 3 s.
	common := []string{"-c", "300", "-r", "100", "-i", "2", "-l", "15", "-p", "3", "-x", "24", "-g", "-u", target}
	modes := []struct {
		name, stats string
		args        []string
	}{
		{"slow headers (-H)", dir + "/headers", append([]string{"-H", "-o", dir + "/headers"}, common...)},
		{"slow body (-B)", dir + "/body", append([]string{"-B", "-s", "8192", "-f", "application/json", "-o", dir + "/body"}, common...)},
	}
	outputs := make([]string, len(modes))
	errs := make([]error, len(modes))
	var wg sync.WaitGroup
	for i, m := range modes {
		wg.Go(func() { outputs[i], errs[i] = slowhttptest(ctx, m.args...) })
	}

	// Well-behaved callers, over both listeners, while the attack lasts.
	loadCtx, stopLoad := context.WithCancel(ctx)
	grpcLoad := grpcUnaryLoad(loadCtx, s.grpcClient(t, false), 2)
	restLoad := restUnaryLoad(loadCtx, transports[2].client(t, s), target, 2)
	tlsLoad := restUnaryLoad(loadCtx, transports[1].client(t, s), s.httpsURL("/v1/codename"), 1)
	var peak float64
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-time.After(500 * time.Millisecond):
			peak = max(peak, s.frontendSessions(t))
		}
	}
	stopLoad()
	grpcLoad.check(t, "gRPC unary during the attack")
	restLoad.check(t, "REST unary (cleartext) during the attack")
	tlsLoad.check(t, "REST unary (TLS) during the attack")
	t.Logf("HAProxy held at most %v client connections", peak)

	for i, m := range modes {
		if errs[i] != nil {
			t.Errorf("%s: slowhttptest: %v\n%s", m.name, errs[i], outputs[i])
			continue
		}
		rows, err := slowhttptestStats(m.stats)
		if err != nil {
			t.Errorf("%s: %v\n%s", m.name, err, outputs[i])
			continue
		}
		var peak, unavailable int
		for _, r := range rows {
			peak = max(peak, r[3])
			if r[4] == 0 {
				unavailable++
			}
		}
		last := rows[len(rows)-1]
		t.Logf("%s: at most %d connections held open at once; after %d s, %d closed by the server, %d still open; probe unanswered in %d of %d seconds",
			m.name, peak, last[0], last[1], last[3], unavailable, len(rows))
		if unavailable > 0 {
			t.Errorf("%s: slowhttptest's probe found the service unavailable in %d seconds", m.name, unavailable)
		}
	}
	// HAProxy, not a backend, ended the slow requests: with 408 once
	// `timeout http-request` ran out (a slow body is buffered for the
	// unary REST backend, so the same timeout covers it), and none of the
	// slow bodies (the only POSTs here) reached the gateway.
	var timedOut [2]int
	for _, line := range strings.Split(s.log.String(), "\n") {
		if strings.HasPrefix(line, "haproxy") && strings.Contains(line, " 408 ") {
			if strings.Contains(line, " POST ") {
				timedOut[1]++
			} else {
				timedOut[0]++
			}
		}
	}
	t.Logf("HAProxy answered 408 to %d slow-header and %d slow-body requests", timedOut[0], timedOut[1])
	if timedOut[0] == 0 || timedOut[1] == 0 {
		t.Errorf("HAProxy timed out %d slow-header and %d slow-body requests, want some of each", timedOut[0], timedOut[1])
	}
	// The well-behaved GETs are counted there, so a missing POST series
	// means none came, not that the metric moved.
	gw := s.get(t, "http://"+s.restAdminAddr(1)+"/metrics")
	if gets := metricValue(t, gw, "codename_gateway_http_requests_total", map[string]string{"method": "GET"}); gets == 0 {
		t.Errorf("the gateway counted no GET, though the well-behaved callers made some")
	}
	if posts, _ := promtest.Sum(gw, "codename_gateway_http_requests_total", map[string]string{"method": "POST"}); posts != 0 {
		t.Errorf("%v slow-body requests reached the gateway", posts)
	}
}

// TestHostileOversizedMessages: a JSON body over 64 KiB is a 413 in the
// JSON error shape, whose code is RESOURCE_EXHAUSTED; a gRPC message over
// the server's 64 KiB limit (CODENAME_MAX_RECV_BYTES) is RESOURCE_EXHAUSTED
// too, unary or streamed; one just under the limit gets through to be
// judged on its content; and the server goes on serving.
func TestHostileOversizedMessages(t *testing.T) {
	s := start(t)
	big := strings.Repeat("a", 70<<10)

	for _, tp := range transports {
		t.Run("REST "+tp.name, func(t *testing.T) {
			c := tp.client(t, s)
			resp, b := do(t, c, "POST", tp.url(s, "/v1/codename"), "application/json", `{"category":"`+big+`"}`)
			var got errorBody
			if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &got) != nil ||
				got.Code != int(codes.ResourceExhausted) || !strings.Contains(got.Message, "larger than 65536 bytes") || got.Details == nil {
				t.Errorf("got %s %q %.200s, want 413 with the JSON error shape and code 8, as gRPC says", resp.Status, resp.Header.Get("Content-Type"), b)
			}
			if resp, b := do(t, c, "POST", tp.url(s, "/v1/codename"), "application/json", `{"category":"space"}`); resp.StatusCode != http.StatusOK {
				t.Errorf("after the oversized body: %s %s", resp.Status, b)
			}
		})
	}

	for _, sec := range security {
		t.Run("gRPC "+sec.name, func(t *testing.T) {
			client := s.grpcClient(t, sec.secure)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, err := client.GetCodename(ctx, &codenamev1.NameRequest{Category: big})
			if status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), "larger than max") {
				t.Errorf("GetCodename with a 70 KiB message: %v, want ResourceExhausted", err)
			}
			// Just under the limit, the message reaches the service: 60 KiB
			// of a field the service does not know, beside a valid category.
			padded := &codenamev1.NameRequest{Category: "space"}
			padded.ProtoReflect().SetUnknown(protowire.AppendBytes(protowire.AppendTag(nil, 99, protowire.BytesType), []byte(big[:60<<10])))
			if res, err := client.GetCodename(ctx, padded); err != nil || categoryOf(res.GetName()) != "space" {
				t.Errorf("GetCodename with a 60 KiB message: %v %v, want a space codename", res, err)
			}
			// A long unknown category is still INVALID_ARGUMENT: the service
			// quotes only its start, so the grpc-message trailer stays far
			// below HAProxy's 16 KiB buffer (tune.bufsize), which a whole
			// quote would overflow (the client would then see UNAVAILABLE).
			for _, n := range []int{1 << 10, 20 << 10} {
				_, err = client.GetCodename(ctx, &codenamev1.NameRequest{Category: big[:n]})
				if c := status.Code(err); c != codes.InvalidArgument || len(status.Convert(err).Message()) > 200 {
					t.Errorf("GetCodename with an unknown category of %d KiB: %v, want a short InvalidArgument", n>>10, err)
				}
			}
			stream, err := client.KeepGettingCodenames(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(&codenamev1.NameRequest{Category: big}); err != nil {
				t.Fatal(err)
			}
			if _, err := stream.Recv(); status.Code(err) != codes.ResourceExhausted {
				t.Errorf("stream with a 70 KiB message: %v, want ResourceExhausted", err)
			}
			if _, err := client.GetCodename(ctx, &codenamev1.NameRequest{Category: "science"}); err != nil {
				t.Errorf("after the oversized messages: %v", err)
			}
		})
	}
	select {
	case <-s.Process("server-1").Done():
		t.Fatal("the server exited")
	default:
	}
}

// TestHostileIdleConnections: 1000 TCP connections that never send a byte
// to the cleartext listener and 200 TLS connections that finish their
// handshake and then say nothing; HAProxy holds them all, and well-behaved
// callers are served meanwhile without a failure.
func TestHostileIdleConnections(t *testing.T) {
	const plain, secure = 1000, 200
	// From one address, beyond the public share of connections: this test
	// is about holding idle connections (TestFloodFromOtherAddresses tests
	// the share).
	s := start(t, withEnv("CODENAME_CONN_PER_SOURCE=2000"))
	base := s.frontendSessions(t)

	var (
		mu    sync.Mutex
		conns []net.Conn
		errs  []error
		wg    sync.WaitGroup
	)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	sem := make(chan struct{}, 50)
	dial := func(useTLS bool) {
		defer wg.Done()
		sem <- struct{}{}
		defer func() { <-sem }()
		d := &net.Dialer{Timeout: 5 * time.Second}
		var c net.Conn
		var err error
		if useTLS {
			c, err = tls.DialWithDialer(d, "tcp", s.cfg.HTTPSAddr, s.tlsConfig("h2", "http/1.1"))
		} else {
			c, err = d.Dial("tcp", s.cfg.HTTPAddr)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, err)
			return
		}
		conns = append(conns, c)
	}
	start := time.Now()
	for i := range plain + secure {
		wg.Add(1)
		go dial(i < secure)
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d connections failed; first: %v", len(errs), plain+secure, errs[0])
	}
	t.Logf("opened %d idle connections (%d TLS, handshaken) in %v", len(conns), secure, time.Since(start).Round(time.Millisecond))
	var held float64
	poll.For(t, "HAProxy to hold the idle connections", 10*time.Second, func() error {
		if held = s.frontendSessions(t) - base; held < plain+secure {
			return fmt.Errorf("it holds %v", held)
		}
		return nil
	})
	t.Logf("HAProxy holds %v client connections beyond its own", held)

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	grpcLoad, restLoad := unaryLoads(t, ctx, s, true, transports[2], "/v1/codename", 2)
	grpcLoad.check(t, "gRPC unary beside the idle connections")
	restLoad.check(t, "REST unary beside the idle connections")
	if now := s.frontendSessions(t) - base; now < plain+secure {
		t.Logf("HAProxy closed %v idle connections during the load", plain+secure-now)
	}
}

// halfOpen is a stream a client opened and then neither fed nor closed.
type halfOpen struct {
	done chan error // receives how the stream ended, once
}

// openHalfOpenGRPC opens KeepGettingCodenames and sends nothing.
func openHalfOpenGRPC(ctx context.Context, client codenamev1.CodenameCreatorClient) halfOpen {
	h := halfOpen{done: make(chan error, 1)}
	stream, err := client.KeepGettingCodenames(ctx)
	if err != nil {
		h.done <- err
		return h
	}
	go func() {
		_, err := stream.Recv()
		h.done <- err
	}()
	return h
}

// openHalfOpenREST posts to /v1/codenames:stream with a body that neither
// sends nor ends.
func openHalfOpenREST(ctx context.Context, c *http.Client, url string) (halfOpen, *io.PipeWriter) {
	h := halfOpen{done: make(chan error, 1)}
	body, w := io.Pipe()
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", url, body)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			err = fmt.Errorf("%s %s", resp.Status, b)
		}
		h.done <- err
	}()
	return h, w
}

// TestHostileHalfOpenStreams: 50 gRPC and 50 REST streams that are opened
// and then never sent to (nor closed) take no capacity from anyone else,
// and end on the server the moment their clients give up.
func TestHostileHalfOpenStreams(t *testing.T) {
	const n = 50
	s := start(t)
	server := newMetricsProbe(t, s.cfg.GRPCAdminAddrs[0])
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	var streams []halfOpen
	idle := s.grpcClient(t, false)
	h1, h2 := transports[2].client(t, s), transports[3].client(t, s)
	for i := range n {
		streams = append(streams, openHalfOpenGRPC(ctx, idle))
		c := h1
		if i%2 == 1 {
			c = h2
		}
		h, w := openHalfOpenREST(ctx, c, s.httpURL("/v1/codenames:stream"))
		defer w.Close()
		streams = append(streams, h)
	}
	poll.For(t, "the server to hold every stream", 10*time.Second, server.gauge("codename_open_streams", 2*n))

	loadCtx, stopLoad := context.WithTimeout(ctx, 2*time.Second)
	defer stopLoad()
	grpcLoad := grpcUnaryLoad(loadCtx, s.grpcClient(t, false), 2)
	restLoad := restUnaryLoad(loadCtx, h2, s.httpURL("/v1/codename"), 2)
	// A stream opened now, on the very connection of the idle gRPC
	// streams, is served at once.
	stream, err := idle.KeepGettingCodenames(loadCtx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&codenamev1.NameRequest{Category: "space"}); err != nil {
		t.Fatal(err)
	}
	if res, err := stream.Recv(); err != nil || categoryOf(res.GetName()) != "space" {
		t.Errorf("a live stream beside the idle ones: %v %v", res, err)
	}
	grpcLoad.check(t, "gRPC unary beside the half-open streams")
	restLoad.check(t, "REST unary beside the half-open streams")
	for _, h := range streams {
		select {
		case err := <-h.done:
			t.Fatalf("a half-open stream ended by itself: %v", err)
		default:
		}
	}

	cancel()
	took, ok := poll.Until(time.Second, func() bool { return server.value("codename_open_streams") == 0 })
	t.Logf("%d half-open streams ended on the server %v after their clients gave up", 2*n, took.Round(time.Millisecond))
	if !ok {
		t.Errorf("codename_open_streams still %v a second after the clients gave up", server.value("codename_open_streams"))
	}
}

// TestHostileHalfOpenStreamsTimeOut: left alone, a stream that carries
// nothing either way is ended by HAProxy's `timeout client`/`timeout
// server` (5 minutes in haproxy.cfg; 2 s in the copy this test runs, to see
// it happen) and the server lets go of it. What the client is told
// differs between 2.6 and 3.x (the README's error table).
func TestHostileHalfOpenStreamsTimeOut(t *testing.T) {
	cfg := haproxyConfigWith(t, map[string]string{
		"    timeout client 5m\n": "    timeout client 2s\n",
		"    timeout server 5m\n": "    timeout server 2s\n",
	})
	s := start(t, haproxyConfig(cfg))
	server := newMetricsProbe(t, s.cfg.GRPCAdminAddrs[0])
	opened := time.Now()
	g := openHalfOpenGRPC(t.Context(), s.grpcClient(t, false))
	r1, w1 := openHalfOpenREST(t.Context(), transports[2].client(t, s), s.httpURL("/v1/codenames:stream"))
	defer w1.Close()
	r2, w2 := openHalfOpenREST(t.Context(), transports[3].client(t, s), s.httpURL("/v1/codenames:stream"))
	defer w2.Close()
	poll.For(t, "the server to hold the streams", 10*time.Second, server.gauge("codename_open_streams", 3))

	for _, h := range []struct {
		name string
		h    halfOpen
	}{{"gRPC", g}, {"REST HTTP/1.1", r1}, {"REST h2c", r2}} {
		select {
		case err := <-h.h.done:
			t.Logf("%s half-open stream ended after %v: %v", h.name, time.Since(opened).Round(time.Millisecond), err)
			// HAProxy 2.6 answers a request whose server said nothing
			// in `timeout server` with its 504 (code 4), which grpc-go
			// maps to UNAVAILABLE. 3.x ends it first for the client's
			// silence, as a request that never arrived whole: 400
			// (code 3), which grpc-go maps to INTERNAL.
			wantStatus, wantCode, wantGRPC := "504 ", `"code":4`, codes.Unavailable
			if b := haproxyUnderTest(t); b.atLeast(3, 0) {
				wantStatus, wantCode, wantGRPC = "400 ", `"code":3`, codes.Internal
			}
			if h.name == "gRPC" && status.Code(err) != wantGRPC {
				t.Errorf("gRPC stream ended with %v, want %v", err, wantGRPC)
			}
			if msg := fmt.Sprint(err); h.name != "gRPC" && (!strings.HasPrefix(msg, wantStatus) || !strings.Contains(msg, wantCode)) {
				t.Errorf("%s stream ended with %v, want HAProxy's %swith %s", h.name, err, wantStatus, wantCode)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s half-open stream still open %v after it opened, with 2 s timeouts", h.name, time.Since(opened).Round(time.Millisecond))
		}
	}
	took, ok := poll.Until(time.Second, func() bool { return server.value("codename_open_streams") == 0 })
	t.Logf("the server let go of them %v later", took.Round(time.Millisecond))
	if !ok {
		t.Errorf("codename_open_streams still %v", server.value("codename_open_streams"))
	}
}

// haproxyConfigWith writes a copy of haproxy/haproxy.cfg with each key of
// edits replaced by its value (each must occur), and returns its path.
func haproxyConfigWith(t *testing.T, edits map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "haproxy/haproxy.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for old, new := range edits {
		if !strings.Contains(cfg, old) {
			t.Fatalf("haproxy.cfg no longer holds %q", old)
		}
		cfg = strings.ReplaceAll(cfg, old, new)
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestHostileClientStopsReading: a client that opens a stream of codenames
// sent as fast as flow control allows (CODENAME_STREAM_INTERVAL=0) and then
// reads nothing, over gRPC and over REST. Flow control holds: the server
// stops sending once the windows and buffers between them are full, its
// memory (and the gateway's) stays flat, and other callers are served
// meanwhile.
func TestHostileClientStopsReading(t *testing.T) {
	s := start(t, withEnv("CODENAME_STREAM_INTERVAL=0"))
	server := newMetricsProbe(t, s.cfg.GRPCAdminAddrs[0])
	gateway := newMetricsProbe(t, s.restAdminAddr(1))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	// gRPC: one codename read, then none.
	stream := openCodenames(t, ctx, s.grpcClient(t, false), "science")
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	// REST over HTTP/1.1: one line read, then none.
	conn, resp := openNDJSONStream(t, s.cfg.HTTPAddr, `{"category":"space"}`)
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	type sample struct{ sent, serverRSS, serverHeap, gatewayRSS, gatewayHeap float64 }
	// One scrape of each process per sample.
	take := func() sample {
		st, err := server.text()
		if err != nil {
			t.Fatalf("server metrics: %v", err)
		}
		gt, err := gateway.text()
		if err != nil {
			t.Fatalf("gateway metrics: %v", err)
		}
		return sample{
			metricValue(t, st, "grpc_server_msg_sent_total", map[string]string{"grpc_method": "KeepGettingCodenames"}),
			metricValue(t, st, "process_resident_memory_bytes", nil), metricValue(t, st, "go_memstats_heap_inuse_bytes", nil),
			metricValue(t, gt, "process_resident_memory_bytes", nil), metricValue(t, gt, "go_memstats_heap_inuse_bytes", nil),
		}
	}
	first := take()
	loadCtx, stopLoad := context.WithCancel(ctx)
	grpcLoad, restLoad := unaryLoads(t, loadCtx, s, true, transports[3], "/v1/codename", 2)
	// Every 0.5 s for at least 5 s, and until the count has not moved for
	// a second (at most 10 s: a slow machine fills the buffers slowly).
	var samples []sample
	for len(samples) < 20 {
		tick := time.NewTimer(500 * time.Millisecond)
		<-tick.C
		samples = append(samples, take())
		if n := len(samples); n >= 10 && samples[n-1].sent == samples[n-3].sent {
			break
		}
	}
	stopLoad()
	grpcLoad.check(t, "gRPC unary beside the stalled streams")
	restLoad.check(t, "REST unary beside the stalled streams")

	const mb = 1 << 20
	var peak sample
	for _, x := range samples {
		peak = sample{max(peak.sent, x.sent), max(peak.serverRSS, x.serverRSS), max(peak.serverHeap, x.serverHeap), max(peak.gatewayRSS, x.gatewayRSS), max(peak.gatewayHeap, x.gatewayHeap)}
	}
	last := samples[len(samples)-1]
	var sentEach []float64
	for _, x := range samples {
		sentEach = append(sentEach, x.sent)
	}
	t.Logf("codenames sent on the two streams: %v when their clients stopped reading, then every 0.5 s: %v", first.sent, sentEach)
	t.Logf("server: RSS %.1f MB -> peak %.1f MB, heap in use %.1f MB -> peak %.1f MB", first.serverRSS/mb, peak.serverRSS/mb, first.serverHeap/mb, peak.serverHeap/mb)
	t.Logf("gateway: RSS %.1f MB -> peak %.1f MB, heap in use %.1f MB -> peak %.1f MB", first.gatewayRSS/mb, peak.gatewayRSS/mb, first.gatewayHeap/mb, peak.gatewayHeap/mb)
	for _, g := range []struct {
		what       string
		from, peak float64
	}{
		{"server RSS", first.serverRSS, peak.serverRSS},
		{"gateway RSS", first.gatewayRSS, peak.gatewayRSS},
	} {
		if g.peak-g.from > 50*mb {
			t.Errorf("%s grew by %.1f MB while the clients read nothing, want < 50 MB", g.what, (g.peak-g.from)/mb)
		}
	}
	// Flow control: the unread streams came to take nothing more (the
	// windows and socket buffers between server and client were full); a
	// server that ignored it would send hundreds of thousands a second.
	if d := last.sent - samples[len(samples)-3].sent; d > 0 {
		t.Errorf("the server still sent %v codenames a second to clients that read nothing, %v s after they stopped", d, float64(len(samples))/2)
	}

	cancel()
	conn.Close()
	if _, ok := poll.Until(time.Second, func() bool { return server.value("codename_open_streams") == 0 }); !ok {
		t.Errorf("the stalled streams are still open a second after their clients left")
	}
}
