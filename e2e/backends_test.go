package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/poll"
	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// serverState says whether HAProxy's Prometheus exporter reports server
// srv of backend proxy in state (UP, DOWN, ...).
func (s *system) serverState(t *testing.T, proxy, srv, state string) bool {
	t.Helper()
	return metricValue(t, s.get(t, "http://"+s.cfg.StatsAddr+"/metrics"), "haproxy_server_status",
		map[string]string{"proxy": proxy, "server": srv, "state": state}) == 1
}

// allBackends are the server lines of haproxy.cfg with one replica.
var allBackends = [][2]string{{"be_grpc", "grpc1"}, {"be_grpc_stream", "grpc1"}, {"be_rest", "gw1"}, {"be_rest_stream", "gw1"}, {"be_rest_ws", "gw1"}}

// TestBackendKilledMidStream: the gRPC server is SIGKILLed while a gRPC
// stream and a REST stream run through HAProxy. Neither client hangs: the
// gRPC stream ends with a status at once, the REST stream with an error
// line; HAProxy marks the server down, and new calls fail fast with
// UNAVAILABLE or 503 in the JSON error shape.
func TestBackendKilledMidStream(t *testing.T) {
	// Separate: the gateway outlives its server here and writes the error
	// line; co-located they die together (TestFailoverOnSIGKILL).
	s := start(t, gatewayMode(stack.Separate))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	grpcStream := openCodenames(t, ctx, s.grpcClient(t, true), "space")
	expectCategory(t, grpcStream, "space", 2)

	body, send := io.Pipe()
	defer send.Close()
	req, err := http.NewRequestWithContext(ctx, "POST", s.httpsURL("/v1/codenames:stream"), body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	go func() { _, _ = io.WriteString(send, `{"category":"animals"}`+"\n") }()
	resp, err := transports[1].client(t, s).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for range 2 {
		if !lines.Scan() {
			t.Fatalf("REST stream: %v", lines.Err())
		}
	}

	type ended struct {
		err   error
		after time.Duration
		last  string
	}
	grpcEnded, restEnded := make(chan ended, 1), make(chan ended, 1)
	victim := s.Process("server-1")
	killed := time.Now()
	if err := victim.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			if _, err := grpcStream.Recv(); err != nil {
				grpcEnded <- ended{err: err, after: time.Since(killed)}
				return
			}
		}
	}()
	go func() {
		var last string
		for lines.Scan() {
			last = lines.Text()
		}
		restEnded <- ended{err: lines.Err(), after: time.Since(killed), last: last}
	}()

	select {
	case e := <-grpcEnded:
		// Through HAProxy the stream is cut: 2.6 sends no trailers
		// (INTERNAL), 3.x resets it (CANCELLED); direct to the server
		// it would be UNAVAILABLE. Clients should treat either as
		// retryable, as the README's error table says.
		t.Logf("gRPC stream ended %v after the kill: %v", e.after.Round(time.Millisecond), e.err)
		if b := haproxyUnderTest(t); !b.cutStream(e.err) {
			t.Errorf("gRPC stream ended with %v, want what HAProxy %s sends when it cuts a stream", e.err, b.version)
		}
	case <-time.After(5 * time.Second):
		t.Error("the gRPC stream is still open 5 s after its server was killed")
	}
	select {
	case e := <-restEnded:
		t.Logf("REST stream ended %v after the kill; last line %s, read error %v", e.after.Round(time.Millisecond), e.last, e.err)
		var l streamLine
		if json.Unmarshal([]byte(e.last), &l) != nil || l.Error == nil {
			// Or the connection closes: then the body must not end cleanly.
			if e.err == nil {
				t.Errorf("REST stream ended cleanly after %q, want an error line or a broken body", e.last)
			}
		} else if l.Error.Code != int(codes.Unavailable) {
			t.Errorf("REST stream's error line %s, want code 14 (UNAVAILABLE)", e.last)
		}
	case <-time.After(5 * time.Second):
		t.Error("the REST stream is still open 5 s after the server was killed")
	}

	<-victim.Done()
	took, ok := poll.Until(5*time.Second, func() bool {
		return s.serverState(t, "be_grpc", "grpc1", "DOWN") && s.serverState(t, "be_grpc_stream", "grpc1", "DOWN")
	})
	t.Logf("HAProxy marked grpc1 down %v after the stream ended", took.Round(time.Millisecond))
	if !ok {
		t.Error("HAProxy has not marked grpc1 down")
	}
	checkFailsFast(t, s, time.Second)
}

// checkFailsFast: with no usable backend, gRPC calls (unary and stream)
// end with UNAVAILABLE within grpcLimit, and REST calls (unary and stream)
// with a 503 in the JSON error shape within a second.
func checkFailsFast(t *testing.T, s *system, grpcLimit time.Duration) {
	t.Helper()
	client := s.grpcClient(t, false)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// The unary call and the stream at the same time, since each may take
	// up to grpcLimit.
	calls := map[string]func() error{
		"GetCodename": func() error {
			_, err := client.GetCodename(ctx, &codenamev1.NameRequest{})
			return err
		},
		"KeepGettingCodenames": func() error {
			stream, err := client.KeepGettingCodenames(ctx)
			if err == nil {
				_ = stream.Send(&codenamev1.NameRequest{})
				_, err = stream.Recv()
			}
			return err
		},
	}
	var wg sync.WaitGroup
	for name, call := range calls {
		wg.Go(func() {
			start := time.Now()
			err := call()
			took := time.Since(start)
			t.Logf("%s: %v after %v", name, status.Code(err), took.Round(time.Millisecond))
			if status.Code(err) != codes.Unavailable || took > grpcLimit {
				t.Errorf("%s: %v after %v, want Unavailable within %v", name, err, took, grpcLimit)
			}
		})
	}
	wg.Wait()
	var start time.Time
	c := transports[2].client(t, s)
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/v1/codename", ""},
		{"POST", "/v1/codenames:stream", `{"category":"space"}`},
	} {
		start = time.Now()
		resp, b := do(t, c, r.method, s.httpURL(r.path), "application/json", r.body)
		t.Logf("%s %s: %s %s after %v", r.method, r.path, resp.Status, b, time.Since(start).Round(time.Millisecond))
		var e errorBody
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &e) != nil || e.Code != int(codes.Unavailable) {
			t.Errorf("%s %s: %s %q %s, want 503 with the JSON error shape and code 14", r.method, r.path, resp.Status, resp.Header.Get("Content-Type"), b)
		}
		if time.Since(start) > time.Second {
			t.Errorf("%s %s took %v, want under a second", r.method, r.path, time.Since(start))
		}
	}
}

// TestBackendMisbehaves: HAProxy in front of a backend that accepts
// connections and never says a byte, or answers garbage. HAProxy's health
// checks mark it down within a second or two, and from then on clients
// fail fast with UNAVAILABLE or a JSON 503; nobody hangs, not even a call
// sent before the backend was marked down.
func TestBackendMisbehaves(t *testing.T) {
	for _, tt := range []struct {
		name   string
		answer func(net.Conn)
		// down are the backends whose server must be marked down.
		down [][2]string
		// grpcLimit bounds how long a gRPC call takes to fail.
		grpcLimit time.Duration
		// earlyHangOn3 is set where HAProxy 3.x may let the calls sent
		// before the mark-down wait for `timeout server`.
		earlyHangOn3 bool
	}{
		// Accepts, reads whatever comes, never writes. HAProxy 2.6 waits
		// `timeout connect` for the server's side of the HTTP/2
		// handshake; 3.x takes a cleartext connection as established
		// once TCP has connected, so a call it sent there may wait for
		// `timeout server`.
		{"never answers", func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }, allBackends, time.Second, true},
		// Answers every connection with an HTTP/1.1 200 with a body of
		// garbage, then closes. The gateways are checked over h2, which
		// this fails; the gRPC servers are checked with an HTTP/1.1 GET
		// /healthz (check-proto h1) that looks only at the status, so
		// HAProxy keeps them UP (`http-check expect rstring ^SERVING`
		// would mark them down). gRPC calls still fail cleanly, but only
		// after HAProxy has tried the server 1 + 3 times (`retries 3`),
		// waiting 1 s before each retry: about 3 s, then 503.
		{"answers HTTP/1.1 200 and garbage", func(c net.Conn) {
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			_, _ = c.Read(make([]byte, 4096))
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\ngarbage")
			c.Close()
		}, allBackends[2:], 5 * time.Second, false},
		// Answers every connection with random bytes, then closes.
		{"answers random bytes", func(c net.Conn) {
			b := make([]byte, 512)
			_, _ = rand.Read(b)
			_, _ = c.Write(b)
			c.Close()
		}, allBackends, time.Second, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeBackend(t, tt.answer)
			s := start(t, edgeOnly(fake.addr(), fake.addr()))
			started := time.Now()

			// Calls sent at once, before the health checks have had time
			// to mark anything down.
			type outcome struct {
				what string
				err  error
				took time.Duration
			}
			early := make(chan outcome, 2)
			go func() {
				ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
				defer cancel()
				st, err := s.grpcClient(t, false).KeepGettingCodenames(ctx)
				if err == nil {
					_ = st.Send(&codenamev1.NameRequest{})
					_, err = st.Recv()
				}
				early <- outcome{"gRPC stream", err, time.Since(started)}
			}()
			go func() {
				c := &http.Client{Timeout: 20 * time.Second}
				resp, err := c.Get(s.httpURL("/v1/codename"))
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					err = fmt.Errorf("%s %s", resp.Status, b)
				}
				early <- outcome{"REST GET", err, time.Since(started)}
			}()

			took, ok := poll.Until(5*time.Second, func() bool {
				for _, b := range tt.down {
					if !s.serverState(t, b[0], b[1], "DOWN") {
						return false
					}
				}
				return true
			})
			t.Logf("HAProxy marked %d of %d servers down %v after it started (%d connections to the fake backend)", len(tt.down), len(allBackends), took.Round(time.Millisecond), fake.accepted())
			for _, b := range allBackends {
				t.Logf("  %s/%s DOWN: %v", b[0], b[1], s.serverState(t, b[0], b[1], "DOWN"))
			}
			if !ok {
				t.Errorf("not marked down %v after HAProxy started", time.Since(started).Round(time.Millisecond))
			}

			// The early calls end by themselves: HAProxy gives a backend
			// `timeout connect` (2 s) to finish the HTTP/2 handshake (or
			// retries a backend that broke it), then redispatches, finds
			// no server and answers 503.
			early3 := tt.earlyHangOn3 && haproxyUnderTest(t).atLeast(3, 0)
			for range 2 {
				if early3 {
					// Seen both ways: ended by the unary pool's retries,
					// or still waiting. What must hold is that the calls
					// after the mark-down fail fast (below).
					select {
					case o := <-early:
						t.Logf("%s sent before the mark-down ended %v after HAProxy started: %v", o.what, o.took.Round(time.Millisecond), o.err)
					case <-time.After(time.Second):
						t.Log("as 3.x may, a call sent before the mark-down still waits")
					}
					continue
				}
				select {
				case o := <-early:
					t.Logf("%s sent before the mark-down ended %v after HAProxy started: %v", o.what, o.took.Round(time.Millisecond), o.err)
					// A 502 (code 14) if HAProxy read the garbage itself.
					if msg := fmt.Sprint(o.err); status.Code(o.err) != codes.Unavailable && !strings.HasPrefix(msg, "503 ") && !(strings.HasPrefix(msg, "502 ") && strings.Contains(msg, `"code":14`)) {
						t.Errorf("%s sent before the mark-down: %v, want Unavailable, a 503, or a 502 with code 14", o.what, o.err)
					}
				case <-time.After(5 * time.Second):
					t.Errorf("a call sent before the mark-down still hangs %v after HAProxy started", time.Since(started).Round(time.Millisecond))
				}
			}
			checkFailsFast(t, s, tt.grpcLimit)
		})
	}
}
