package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/server/codename"
)

// TestSplitServesBothProtocols checks that one port answers gRPC calls and
// plain HTTP/1.1 requests.
func TestSplitServesBothProtocols(t *testing.T) {
	s := startTCPServer(t, Config{})
	client := s.dialGRPC(t)
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	resp, err := client.GetCodename(ctx, &codenamev1.NameRequest{Category: "science"})
	if err != nil {
		t.Fatalf("GetCodename over TCP: %v", err)
	}
	if got := codename.CategoryOf(resp.GetName()); got != "science" {
		t.Errorf("got %q from category %q, want science", resp.GetName(), got)
	}

	tests := []struct {
		name     string
		path     string
		wantCode int
		wantBody string // a prefix of the body
	}{
		{name: "healthz", path: "/healthz", wantCode: http.StatusOK, wantBody: "SERVING\n"},
		{name: "unknown path", path: "/nope", wantCode: http.StatusNotFound, wantBody: "404 page not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := s.mustGet(t, tt.path)
			if code != tt.wantCode {
				t.Errorf("GET %s = %d, want %d", tt.path, code, tt.wantCode)
			}
			if !strings.HasPrefix(body, tt.wantBody) {
				t.Errorf("GET %s body = %.100q, want it to start with %q", tt.path, body, tt.wantBody)
			}
		})
	}
}

// TestSplitHealthzDuringDrain checks the drain as HAProxy sees it: /healthz
// turns 503 as soon as Serve's context ends, the port goes on serving for
// DrainDelay, and then refuses connections.
func TestSplitHealthzDuringDrain(t *testing.T) {
	const drainDelay = 300 * time.Millisecond
	s := startTCPServer(t, Config{DrainDelay: drainDelay})
	client := s.dialGRPC(t)
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	if _, err := client.GetCodename(ctx, &codenamev1.NameRequest{}); err != nil {
		t.Fatalf("GetCodename: %v", err)
	}
	if code, body := s.mustGet(t, "/healthz"); code != http.StatusOK || body != "SERVING\n" {
		t.Fatalf("healthz before shutdown = %d %q, want 200 %q", code, body, "SERVING\n")
	}

	start := time.Now()
	go s.shutdown()

	eventually(t, "healthz to turn 503", func() (bool, string) {
		code, body, err := s.get(ctx, "/healthz")
		if err != nil {
			t.Fatalf("GET /healthz %v after shutdown began: %v; want 503 during the %v drain delay", time.Since(start), err, drainDelay)
		}
		return code == http.StatusServiceUnavailable, fmt.Sprintf("%d %q", code, body)
	})
	// Calls go on being served during the delay. Past it, a failure says
	// nothing: the test was merely slow.
	if _, err := client.GetCodename(ctx, &codenamev1.NameRequest{}); err != nil && time.Since(start) < drainDelay {
		t.Errorf("GetCodename during the drain delay: %v", err)
	}

	eventually(t, "port to refuse connections", func() (bool, string) {
		conn, err := net.DialTimeout("tcp", s.addr, waitTimeout)
		if err == nil {
			_ = conn.Close()
			return false, "connected"
		}
		if errors.Is(err, syscall.ECONNRESET) {
			return false, err.Error() // queued as the listener closed
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial after the drain delay: %v, want connection refused", err)
		}
		return true, ""
	})
	if took := time.Since(start); took < drainDelay {
		t.Errorf("port refused connections %v after shutdown began, want not before the drain delay %v", took, drainDelay)
	}
	if _, err := s.shutdown(); err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
}

// TestSplitServesNoMetrics checks that the gRPC port, which HAProxy
// forwards to, keeps the metrics to itself, whether or not they are served
// on an admin listener.
func TestSplitServesNoMetrics(t *testing.T) {
	for _, admin := range []bool{false, true} {
		t.Run(fmt.Sprintf("admin listener %v", admin), func(t *testing.T) {
			var cfg Config
			if admin {
				cfg.MetricsListener = listenTCP(t)
			}
			s := startTCPServer(t, cfg)
			if code, body := s.mustGet(t, "/metrics"); code != http.StatusNotFound {
				t.Errorf("GET /metrics on the gRPC port = %d %.100q, want 404", code, body)
			}
		})
	}
}

// TestSplitIdleConnectionsDoNotBlock opens connections that send nothing,
// or only the start of what would tell their protocol, and checks that
// other connections are served meanwhile: each connection is sniffed on its
// own, not in the accept loop.
func TestSplitIdleConnectionsDoNotBlock(t *testing.T) {
	tests := []struct {
		name string
		sent string
	}{
		{name: "nothing"},
		{name: "part of the HTTP/2 preface", sent: "PR"},
		{name: "part of an HTTP/1.1 request", sent: "GET /hea"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startTCPServer(t, Config{})
			for range 3 {
				conn, err := net.Dial("tcp", s.addr)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = conn.Close() }) // before Serve stops
				if _, err := io.WriteString(conn, tt.sent); err != nil {
					t.Fatal(err)
				}
			}
			// Well within the time after which an idle connection is
			// dropped, so that waiting for that would fail the test.
			ctx, cancel := context.WithTimeout(t.Context(), sniffTimeout/2)
			defer cancel()
			if _, err := s.dialGRPC(t).GetCodename(ctx, &codenamev1.NameRequest{}); err != nil {
				t.Errorf("GetCodename beside idle connections: %v", err)
			}
			code, _, err := s.get(ctx, "/healthz")
			if err != nil || code != http.StatusOK {
				t.Errorf("GET /healthz beside idle connections = %d, %v; want 200", code, err)
			}
		})
	}
}

// TestSplitShortHTTP1Requests writes requests by hand on raw connections:
// requests shorter than the HTTP/2 preface, and requests that arrive a
// byte at a time, must reach the HTTP server whole.
func TestSplitShortHTTP1Requests(t *testing.T) {
	s := startTCPServer(t, Config{})
	bytewise := func(s string) []string { return strings.Split(s, "") }
	tests := []struct {
		name       string
		writes     []string
		wantStatus string // the status line
		wantBody   string // the end of the response
	}{
		{name: "HTTP/1.0", writes: []string{"GET /healthz HTTP/1.0\r\n\r\n"},
			wantStatus: "HTTP/1.0 200 OK", wantBody: "\r\n\r\nSERVING\n"},
		{name: "HTTP/1.1 with Connection: close", writes: []string{"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
			wantStatus: "HTTP/1.1 200 OK", wantBody: "\r\n\r\nSERVING\n"},
		{name: "a byte at a time", writes: bytewise("GET /healthz HTTP/1.0\r\n\r\n"),
			wantStatus: "HTTP/1.0 200 OK", wantBody: "\r\n\r\nSERVING\n"},
		{name: "P of POST alone, as of PRI", writes: bytewise("POST /healthz HTTP/1.0\r\n\r\n"),
			wantStatus: "HTTP/1.0 405 Method Not Allowed", wantBody: "Method Not Allowed\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = conn.Close() })
			_ = conn.SetDeadline(time.Now().Add(waitTimeout))
			for _, w := range tt.writes {
				if _, err := io.WriteString(conn, w); err != nil {
					t.Fatalf("write %q: %v", w, err)
				}
			}
			resp, err := io.ReadAll(conn) // the server closes after one response
			if err != nil {
				t.Fatalf("read response: %v (got %q)", err, resp)
			}
			status, _, _ := strings.Cut(string(resp), "\r\n")
			if status != tt.wantStatus {
				t.Errorf("status line = %q, want %q", status, tt.wantStatus)
			}
			if !strings.HasSuffix(string(resp), tt.wantBody) {
				t.Errorf("response = %q, want it to end in %q", resp, tt.wantBody)
			}
		})
	}
}

// fakeListener hands out the connections and errors sent on results, and
// once results is empty, the error of temporary (if set) forever.
type fakeListener struct {
	results   chan acceptResult
	temporary error
	accepts   atomic.Int32
	done      chan struct{}
	close     sync.Once
}

type acceptResult struct {
	conn net.Conn
	err  error
}

func newFakeListener() *fakeListener {
	return &fakeListener{results: make(chan acceptResult, 10), done: make(chan struct{})}
}

func (l *fakeListener) Accept() (net.Conn, error) {
	l.accepts.Add(1)
	if l.temporary != nil {
		select {
		case r := <-l.results:
			return r.conn, r.err
		case <-l.done:
			return nil, net.ErrClosed
		default:
			return nil, l.temporary
		}
	}
	select {
	case r := <-l.results:
		return r.conn, r.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *fakeListener) Close() error {
	l.close.Do(func() { close(l.done) })
	return nil
}

func (l *fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

// temporaryError is what Accept returns when the process is out of file
// descriptors.
type temporaryError struct{}

func (temporaryError) Error() string   { return "accept: too many open files" }
func (temporaryError) Timeout() bool   { return false }
func (temporaryError) Temporary() bool { return true }

// trackedConn notes when it is closed.
type trackedConn struct {
	net.Conn
	closed chan struct{}
	once   sync.Once
}

func newTrackedConn(c net.Conn) *trackedConn {
	return &trackedConn{Conn: c, closed: make(chan struct{})}
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

func (c *trackedConn) waitClosed(t *testing.T) {
	t.Helper()
	select {
	case <-c.closed:
	case <-time.After(waitTimeout):
		t.Fatal("connection not closed within the timeout")
	}
}

// accepted is the outcome of an Accept, and which listener it came from.
type accepted struct {
	from string
	conn net.Conn
	err  error
}

// acceptOnce calls Accept on both listeners of a split and returns the
// outcomes, as they come, on the returned channel.
func acceptOnce(grpcLis, other net.Listener) <-chan accepted {
	out := make(chan accepted, 2)
	for name, l := range map[string]net.Listener{"grpc": grpcLis, "other": other} {
		go func() {
			c, err := l.Accept()
			out <- accepted{from: name, conn: c, err: err}
		}()
	}
	return out
}

func next(t *testing.T, ch <-chan accepted) accepted {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(waitTimeout):
		t.Fatal("no Accept returned within the timeout")
		return accepted{}
	}
}

// TestSplitRoutes feeds in-memory connections, whose reads return exactly
// what each write wrote, to a split, and checks where each goes and that
// it arrives with every byte, the sniffed ones included.
func TestSplitRoutes(t *testing.T) {
	const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	tests := []struct {
		name   string
		writes []string
		want   string // "grpc" or "other"
	}{
		{name: "HTTP/2 preface", writes: []string{preface}, want: "grpc"},
		{name: "HTTP/2 preface a byte at a time", writes: []string{"P", "R", "I", preface[3:]}, want: "grpc"},
		{name: "HTTP/1.1 GET", writes: []string{"GET /healthz HTTP/1.1\r\n\r\n"}, want: "other"},
		{name: "shorter than the preface's PRI", writes: []string{"GE"}, want: "other"},
		{name: "POST, which starts like PRI", writes: []string{"P", "O", "ST / HTTP/1.1\r\n\r\n"}, want: "other"},
		{name: "PR then something else", writes: []string{"PR", "OPFIND / HTTP/1.1\r\n\r\n"}, want: "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeListener()
			grpcLis, other := split(fake)
			t.Cleanup(func() { _ = fake.Close() })
			outcomes := acceptOnce(grpcLis, other)

			client, srv := net.Pipe()
			t.Cleanup(func() { _ = client.Close() })
			fake.results <- acceptResult{conn: srv}
			wrote := make(chan error, 1)
			go func() {
				for _, w := range tt.writes {
					if _, err := io.WriteString(client, w); err != nil {
						wrote <- err
						return
					}
				}
				wrote <- nil
			}()

			a := next(t, outcomes)
			if a.err != nil {
				t.Fatalf("Accept on %s: %v", a.from, a.err)
			}
			t.Cleanup(func() { _ = a.conn.Close() })
			if a.from != tt.want {
				t.Errorf("connection went to the %s listener, want %s", a.from, tt.want)
			}
			want := strings.Join(tt.writes, "")
			got := make([]byte, len(want))
			_ = a.conn.SetReadDeadline(time.Now().Add(waitTimeout))
			if _, err := io.ReadFull(a.conn, got); err != nil {
				t.Fatalf("read %q so far: %v", got, err)
			}
			if string(got) != want {
				t.Errorf("read %q, want %q", got, want)
			}
			if err := <-wrote; err != nil {
				t.Errorf("write: %v", err)
			}
		})
	}
}

// TestSplitDropsConnectionClosedWhileSniffed: a connection that ends
// before its protocol is known is closed, and neither listener gets it.
func TestSplitDropsConnectionClosedWhileSniffed(t *testing.T) {
	fake := newFakeListener()
	grpcLis, other := split(fake)
	t.Cleanup(func() { _ = fake.Close() })
	outcomes := acceptOnce(grpcLis, other)

	client, srv := net.Pipe()
	tracked := newTrackedConn(srv)
	fake.results <- acceptResult{conn: tracked}
	if _, err := io.WriteString(client, "PR"); err != nil {
		t.Fatal(err)
	}
	_ = client.Close()
	tracked.waitClosed(t)

	_ = fake.Close()
	for range 2 {
		if a := next(t, outcomes); a.err == nil {
			t.Errorf("the %s listener got the connection, want neither", a.from)
			_ = a.conn.Close()
		}
	}
}

// TestSplitListenerClose checks the two ways a split's listeners stop:
// closing the listener underneath ends both, and closing one ends only it.
func TestSplitListenerClose(t *testing.T) {
	t.Run("underlying listener closed", func(t *testing.T) {
		lis := listenTCP(t)
		grpcLis, other := split(lis)
		outcomes := acceptOnce(grpcLis, other)
		_ = lis.Close()
		for range 2 {
			if a := next(t, outcomes); !errors.Is(a.err, net.ErrClosed) {
				t.Errorf("Accept on %s = %v, want %v", a.from, a.err, net.ErrClosed)
			}
		}
		// And so it stays.
		for name, l := range map[string]net.Listener{"grpc": grpcLis, "other": other} {
			if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("second Accept on %s = %v, want %v", name, err, net.ErrClosed)
			}
		}
	})

	t.Run("one listener closed", func(t *testing.T) {
		fake := newFakeListener()
		grpcLis, other := split(fake)
		t.Cleanup(func() { _ = fake.Close() })
		if got, want := grpcLis.Addr(), fake.Addr(); got.String() != want.String() {
			t.Errorf("Addr = %v, want the underlying listener's %v", got, want)
		}
		for range 2 { // closing twice is harmless
			if err := grpcLis.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
		if _, err := grpcLis.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close = %v, want %v", err, net.ErrClosed)
		}

		// A gRPC connection that arrives now is closed, and the other
		// listener still works.
		client, srv := net.Pipe()
		t.Cleanup(func() { _ = client.Close() })
		tracked := newTrackedConn(srv)
		fake.results <- acceptResult{conn: tracked}
		go func() { _, _ = io.WriteString(client, "PRI") }()
		tracked.waitClosed(t)

		client2, srv2 := net.Pipe()
		t.Cleanup(func() { _ = client2.Close() })
		fake.results <- acceptResult{conn: srv2}
		go func() { _, _ = io.WriteString(client2, "GET") }()
		got := make(chan accepted, 1)
		go func() {
			c, err := other.Accept()
			got <- accepted{from: "other", conn: c, err: err}
		}()
		if a := next(t, got); a.err != nil {
			t.Errorf("Accept on the other listener: %v", a.err)
		} else {
			_ = a.conn.Close()
		}
	})
}

// TestSplitRetriesTemporaryErrors: a temporary Accept error, such as
// running out of file descriptors, must not stop the split for good, or
// the servers behind it would wait forever for connections.
func TestSplitRetriesTemporaryErrors(t *testing.T) {
	before := goleak.IgnoreCurrent()
	fake := newFakeListener()
	fake.temporary = temporaryError{}
	grpcLis, other := split(fake)
	t.Cleanup(func() { _ = fake.Close() })
	outcomes := acceptOnce(grpcLis, other)

	eventually(t, "Accept to be retried", func() (bool, string) {
		n := fake.accepts.Load()
		return n >= 3, fmt.Sprintf("%d calls", n)
	})
	select {
	case a := <-outcomes:
		t.Fatalf("Accept on %s = %v after a temporary error, want it to wait", a.from, a.err)
	default:
	}

	client, srv := net.Pipe()
	t.Cleanup(func() { _ = client.Close() })
	fake.results <- acceptResult{conn: srv}
	go func() { _, _ = io.WriteString(client, "GET / HTTP/1.1\r\n\r\n") }()
	a := next(t, outcomes)
	if a.err != nil || a.from != "other" {
		t.Fatalf("Accept on %s = %v, want a connection on other", a.from, a.err)
	}
	_ = a.conn.Close()

	// Stopping the servers ends the retries without waiting for the
	// listener underneath.
	_ = grpcLis.Close()
	_ = other.Close()
	if a := next(t, outcomes); !errors.Is(a.err, net.ErrClosed) {
		t.Errorf("Accept on %s after Close = %v, want %v", a.from, a.err, net.ErrClosed)
	}
	goleak.VerifyNone(t, before)
}
