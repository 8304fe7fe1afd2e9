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
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/poll"
)

// finishedStreams returns the codes of the server's "finished call" log
// lines for KeepGettingCodenames, in order.
func finishedStreams(log string) []string {
	var got []string
	for _, m := range finishedStreamLine.FindAllStringSubmatch(log, -1) {
		got = append(got, m[1])
	}
	return got
}

var finishedStreamLine = regexp.MustCompile(`(?m)^server-1.*msg="finished call".*grpc\.method=KeepGettingCodenames.*grpc\.code=(\w+)`)

// dialFunc opens a connection, from this host (directDial) or from a
// host of a stack.Network (Network.DialContext).
type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

var directDial dialFunc = (&net.Dialer{}).DialContext

// dialRawStream sends request (its head, and for a POST the start of a
// chunked body that stays open) over a new HTTP/1.1 connection to addr and
// returns the connection and the response, which must be 200; what names
// the stream in errors.
func dialRawStream(dial dialFunc, addr, what, method, request string) (net.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(conn, request)
	req, _ := http.NewRequest(method, "http://"+addr+"/v1/codenames:stream", nil)
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s stream: %s", what, resp.Status)
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, resp, nil
}

// dialNDJSONStream opens POST /v1/codenames:stream over a raw HTTP/1.1
// connection to addr, sends first as the first message of a chunked body
// that stays open, and returns the connection and the response, whose body
// carries the lines.
func dialNDJSONStream(dial dialFunc, addr, first string) (net.Conn, *http.Response, error) {
	line := first + "\n"
	return dialRawStream(dial, addr, "NDJSON", "POST", fmt.Sprintf(
		"POST /v1/codenames:stream HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n",
		addr, len(line), line))
}

func openNDJSONStream(t *testing.T, addr, first string) (net.Conn, *http.Response) {
	t.Helper()
	conn, resp, err := dialNDJSONStream(directDial, addr, first)
	return keepOpen(t, conn, resp, err)
}

// keepOpen fails the test if a stream did not open (err), and closes its
// connection when the test ends.
func keepOpen[R any](t *testing.T, conn net.Conn, r R, err error) (net.Conn, R) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, r
}

// dialSSEStream opens GET /v1/codenames:stream as Server-Sent Events over a
// raw HTTP/1.1 connection.
func dialSSEStream(dial dialFunc, addr, category string) (net.Conn, *bufio.Reader, error) {
	conn, resp, err := dialRawStream(dial, addr, "SSE", "GET", fmt.Sprintf(
		"GET /v1/codenames:stream?category=%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", category, addr))
	if err != nil {
		return nil, nil, err
	}
	return conn, bufio.NewReader(resp.Body), nil
}

func openSSEStream(t *testing.T, addr, category string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, r, err := dialSSEStream(directDial, addr, category)
	return keepOpen(t, conn, r, err)
}

// goroutineLoad is what a process's goroutines say about leaks: the count,
// less two for each open file beyond those the process had at the baseline.
// A Go server spends about two goroutines on each connection it holds
// (HTTP/2: the connection's loop and its frame reader), and HAProxy keeps
// idle connections to its backends for a while after the streams that
// opened them end (and purges them a few at a time), so raw counts wander
// with HAProxy's pool; a goroutine left behind by a stream does not.
type goroutineLoad struct{ goroutines, fds float64 }

func (p *metricsProbe) goroutineLoad() (goroutineLoad, bool) {
	text, err := p.text()
	if err != nil {
		return goroutineLoad{}, false
	}
	return goroutineLoad{metricValue(p.t, text, "go_goroutines", nil), metricValue(p.t, text, "process_open_fds", nil)}, true
}

// beyond is how many goroutines l has that neither base nor the files
// opened since explain.
func (l goroutineLoad) beyond(base goroutineLoad) float64 {
	return (l.goroutines - base.goroutines) - 2*max(0, l.fds-base.fds)
}

// openSSEOverH2 opens the SSE stream over TLS and HTTP/2, and returns the
// TLS connection under it, to drop.
func openSSEOverH2(t *testing.T, s *system) (net.Conn, *bufio.Reader) {
	t.Helper()
	conns := make(chan net.Conn, 1)
	tr := &http.Transport{
		TLSClientConfig: s.tlsConfig("h2"),
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&tls.Dialer{Config: s.tlsConfig("h2")}).DialContext(ctx, network, addr)
			if err == nil {
				conns <- c
			}
			return c, err
		},
	}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	req, err := http.NewRequestWithContext(t.Context(), "GET", s.httpsURL("/v1/codenames:stream?category=space"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Fatalf("SSE over h2: %s over HTTP/%d", resp.Status, resp.ProtoMajor)
	}
	return <-conns, bufio.NewReader(resp.Body)
}

// TestCancellationReachesServer: however a client gives up on a stream (a
// gRPC cancel or deadline, a REST Grpc-Timeout header, or a dropped
// connection under a REST, WebSocket or SSE stream), the server's handler
// learns of it through HAProxy (and the gateway) within a second, logs the
// call as Canceled or DeadlineExceeded, and neither the server nor the
// gateway keeps a goroutine for it.
func TestCancellationReachesServer(t *testing.T) {
	s := start(t)
	server := newMetricsProbe(t, s.cfg.GRPCAdminAddrs[0])
	gateway := newMetricsProbe(t, s.restAdminAddr(1))
	openStreams := func() float64 { return server.value("codename_open_streams") }
	h2c := s.grpcClient(t, false)
	grpcTLS := s.grpcClient(t, true)

	// One stream of each kind first, so that the connections HAProxy keeps
	// to the backends (and their goroutines) are part of the baseline.
	warm := func() {
		ctx, cancel := context.WithCancel(t.Context())
		for _, c := range []codenamev1.CodenameCreatorClient{h2c, grpcTLS} {
			st, err := c.KeepGettingCodenames(ctx)
			if err == nil && st.Send(&codenamev1.NameRequest{}) == nil {
				_, _ = st.Recv()
			}
		}
		cancel()
		conn, resp := openNDJSONStream(t, s.cfg.HTTPAddr, `{}`)
		_, _ = bufio.NewReader(resp.Body).ReadString('\n')
		conn.Close()
		if _, ok := poll.Until(5*time.Second, func() bool { return openStreams() == 0 }); !ok {
			t.Fatal("warm-up streams still open after 5 s")
		}
	}
	warm()
	// Each process's goroutines, settled: the scrape with the fewest of a
	// few, since health checks come and go every 500 ms.
	settled := func(p *metricsProbe) goroutineLoad {
		var least goroutineLoad
		for i := range 5 {
			if l, ok := p.goroutineLoad(); ok && (i == 0 || l.goroutines-2*l.fds < least.goroutines-2*least.fds) {
				least = l
			}
			tick := time.NewTimer(20 * time.Millisecond)
			<-tick.C
		}
		return least
	}
	baseServer, baseGateway := settled(server), settled(gateway)
	t.Logf("baseline: server %v goroutines and %v open files, gateway %v and %v", baseServer.goroutines, baseServer.fds, baseGateway.goroutines, baseGateway.fds)
	// back waits up to limit for both processes to have no goroutine
	// beyond the baseline but the tolerance, and logs what it saw.
	const tolerance = 4
	back := func(t *testing.T, limit time.Duration) {
		t.Helper()
		var ls, lg goroutineLoad
		took, ok := poll.Until(limit, func() bool {
			var oks, okg bool
			ls, oks = server.goroutineLoad()
			lg, okg = gateway.goroutineLoad()
			return oks && okg && ls.beyond(baseServer) <= tolerance && lg.beyond(baseGateway) <= tolerance
		})
		t.Logf("after %v: server %v goroutines, %v files (%v unexplained); gateway %v, %v (%v unexplained)", took.Round(time.Millisecond),
			ls.goroutines, ls.fds, ls.beyond(baseServer), lg.goroutines, lg.fds, lg.beyond(baseGateway))
		if !ok {
			t.Errorf("goroutines did not return to the baseline (+%d, and 2 per connection HAProxy keeps open) within %v", tolerance, limit)
		}
	}

	for _, tt := range []struct {
		name string
		// open starts a stream, waits until codenames flow, and returns a
		// function that gives up on it the way the case is about, and
		// returns when it has (for a deadline, when the client saw it).
		open      func(t *testing.T) (giveUp func())
		wantCodes []string
	}{
		{"gRPC cancel", func(t *testing.T) func() {
			ctx, cancel := context.WithCancel(t.Context())
			st := openCodenames(t, ctx, grpcTLS, "space")
			if _, err := st.Recv(); err != nil {
				t.Fatal(err)
			}
			return cancel
		}, []string{"Canceled"}},
		{"gRPC deadline", func(t *testing.T) func() {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			t.Cleanup(cancel)
			st := openCodenames(t, ctx, h2c, "space")
			if _, err := st.Recv(); err != nil {
				t.Fatal(err)
			}
			return func() {
				for {
					if _, err := st.Recv(); err != nil {
						if status.Code(err) != codes.DeadlineExceeded {
							t.Errorf("stream ended with %v, want DeadlineExceeded", err)
						}
						return
					}
				}
			}
		}, []string{"DeadlineExceeded", "Canceled"}},
		{"REST Grpc-Timeout", func(t *testing.T) func() {
			// The body stays open: only the timeout can end this stream.
			body, send := io.Pipe()
			t.Cleanup(func() { send.Close() })
			req, err := http.NewRequestWithContext(t.Context(), "POST", s.httpsURL("/v1/codenames:stream"), body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Grpc-Timeout", "1S")
			start := time.Now()
			go func() { _, _ = io.WriteString(send, `{"category":"science"}`+"\n") }()
			resp, err := transports[1].client(t, s).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(resp.Body)
			if !lines.Scan() {
				t.Fatalf("no first line: %v", lines.Err())
			}
			return func() {
				defer resp.Body.Close()
				var last string
				for lines.Scan() {
					last = lines.Text()
				}
				t.Logf("the REST stream ended %v after it started; last line %s", time.Since(start).Round(time.Millisecond), last)
				var l streamLine
				if err := json.Unmarshal([]byte(last), &l); err != nil || l.Error == nil || l.Error.Code != int(codes.DeadlineExceeded) {
					t.Errorf("last line %q: want an error line with code 4 (DeadlineExceeded)", last)
				}
			}
		}, []string{"DeadlineExceeded", "Canceled"}},
		{"REST NDJSON connection dropped", func(t *testing.T) func() {
			conn, resp := openNDJSONStream(t, s.cfg.HTTPAddr, `{"category":"animals"}`)
			if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
				t.Fatal(err)
			}
			return func() { conn.Close() }
		}, []string{"Canceled"}},
		{"WebSocket connection dropped", func(t *testing.T) func() {
			c, _, err := dialWS(t, s, false, "")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			if err := c.Write(ctx, websocket.MessageText, []byte(`{"category":"space"}`)); err != nil {
				t.Fatal(err)
			}
			readWS(t, ctx, c)
			// CloseNow closes the TCP connection with no close frame: the
			// page's tab was killed, or its network went away.
			return func() { _ = c.CloseNow() }
		}, []string{"Canceled"}},
		// Over HTTP/1.1 the drop of an SSE connection (a GET whose request
		// is complete) reaches the gateway only when HAProxy next writes
		// to the dead socket: HAProxy 2.6 does not read from an HTTP/1.1
		// client while it answers it. So it takes up to two stream
		// intervals (100 ms here, 1 s by default), not a fixed time.
		{"SSE over HTTP/1.1 connection dropped", func(t *testing.T) func() {
			conn, r := openSSEStream(t, s.cfg.HTTPAddr, "science")
			readEvents(t, r, 1)
			return func() { conn.Close() }
		}, []string{"Canceled"}},
		// Over HTTP/2 HAProxy always reads the connection, so it sees the
		// drop at once.
		{"SSE over HTTP/2 connection dropped", func(t *testing.T) func() {
			conn, r := openSSEOverH2(t, s)
			readEvents(t, r, 1)
			return func() { conn.Close() }
		}, []string{"Canceled"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logged := len(finishedStreams(s.log.String()))
			giveUp := tt.open(t)
			if n := openStreams(); n != 1 {
				t.Fatalf("codename_open_streams = %v with the stream open, want 1", n)
			}
			giveUp()
			took, ok := poll.Until(time.Second, func() bool { return openStreams() == 0 })
			t.Logf("the server's handler ended %v after the client gave up", took.Round(time.Millisecond))
			if !ok {
				t.Errorf("codename_open_streams still %v a second after the client gave up", openStreams())
			}
			var code string
			if _, ok := poll.Until(2*time.Second, func() bool {
				codes := finishedStreams(s.log.String())
				if len(codes) > logged {
					code = codes[len(codes)-1]
					return true
				}
				return false
			}); !ok {
				t.Fatal("no \"finished call\" line for the stream in the server's log")
			}
			t.Logf("server log: finished call, grpc.code=%s", code)
			if !slices.Contains(tt.wantCodes, code) {
				t.Errorf("the server logged grpc.code=%s, want one of %v", code, tt.wantCodes)
			}
			back(t, 3*time.Second)
		})
	}

	// A goroutine left behind per stream would hide in the tolerance
	// above; 20 streams of each kind at once would not.
	t.Run("20 of each at once", func(t *testing.T) {
		const n = 20
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		// Opened all at once: each HTTP/1.1 stream takes a moment to show
		// its first line.
		type opened struct {
			drop func()
			err  error
		}
		results := make(chan opened, 4*n)
		for range n {
			go func() {
				st, err := h2c.KeepGettingCodenames(ctx)
				if err == nil {
					err = st.Send(&codenamev1.NameRequest{})
				}
				if err == nil {
					_, err = st.Recv()
				}
				results <- opened{cancel, err}
			}()
			go func() {
				conn, resp, err := dialNDJSONStream(directDial, s.cfg.HTTPAddr, `{}`)
				if err == nil {
					_, err = bufio.NewReader(resp.Body).ReadString('\n')
				}
				results <- opened{func() { conn.Close() }, err}
			}()
			go func() {
				ws, _, err := dialWS(t, s, false, "")
				if err == nil {
					err = ws.Write(ctx, websocket.MessageText, []byte(`{}`))
				}
				if err == nil {
					_, _, err = ws.Read(ctx)
				}
				results <- opened{func() { _ = ws.CloseNow() }, err}
			}()
			go func() {
				conn, r, err := dialSSEStream(directDial, s.cfg.HTTPAddr, "space")
				if err == nil {
					_, err = r.ReadString('\n') // "retry: ..."
				}
				results <- opened{func() { conn.Close() }, err}
			}()
		}
		var drops []func()
		for range 4 * n {
			o := <-results
			if o.err != nil {
				t.Errorf("open a stream: %v", o.err)
				continue
			}
			drops = append(drops, o.drop)
		}
		defer func() {
			for _, drop := range drops {
				drop()
			}
		}()
		if t.Failed() {
			return
		}
		if _, ok := poll.Until(2*time.Second, func() bool { return openStreams() == 4*n }); !ok {
			t.Fatalf("codename_open_streams = %v, want %d", openStreams(), 4*n)
		}
		peakServer, _ := server.goroutineLoad()
		peakGateway, _ := gateway.goroutineLoad()
		t.Logf("with %d streams open: server %v goroutines, %v files; gateway %v, %v", 4*n, peakServer.goroutines, peakServer.fds, peakGateway.goroutines, peakGateway.fds)
		for _, drop := range drops {
			drop()
		}
		took, ok := poll.Until(2*time.Second, func() bool { return openStreams() == 0 })
		t.Logf("%d streams ended %v after their clients gave up", 4*n, took.Round(time.Millisecond))
		if !ok {
			t.Errorf("codename_open_streams still %v 2 s after the clients gave up", openStreams())
		}
		back(t, 5*time.Second)
	})
}
