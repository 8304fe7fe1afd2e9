package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/codename-gateway/codename-gateway/gateway"
	"github.com/codename-gateway/codename-gateway/server"
)

// sseEvent is one event of a text/event-stream.
type sseEvent struct {
	name  string // the event: field; "" for a message
	data  string
	retry string
}

// sseStream is an open GET of the stream as Server-Sent Events.
type sseStream struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

// openSSE starts the stream with the given query. The request ends with
// the test, or after waitTimeout.
func openSSE(t *testing.T, ts *httptest.Server, query string) *sseStream {
	t.Helper()
	return openSSEAt(t, ts.Client(), ts.URL, query)
}

// openSSEAt is openSSE through c to the server at base, a proxy say.
func openSSEAt(t *testing.T, c *http.Client, base, query string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/codenames:stream?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return &sseStream{t: t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// nextEvent reads the next event, or returns ok false if the response ends
// before one starts; it skips comments, as EventSource does. Reads are
// bounded by the request's timeout.
func (s *sseStream) nextEvent() (ev sseEvent, ok bool) {
	s.t.Helper()
	started := false
	for {
		line, err := s.r.ReadString('\n')
		if errors.Is(err, io.EOF) && line == "" && !started {
			return sseEvent{}, false
		}
		if err != nil {
			s.t.Fatalf("read event: %v (line so far %q)", err, line)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if started {
				return ev, true
			}
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		started = true
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.name = value
		case "data":
			ev.data += value
		case "retry":
			ev.retry = value
		default:
			s.t.Fatalf("unexpected line %q", line)
		}
	}
}

// next reads the next event as a stream line: a name is a message, an
// error an event named "error".
func (s *sseStream) next() (line streamLine, raw string, ok bool) {
	s.t.Helper()
	ev, ok := s.nextEvent()
	if !ok {
		return streamLine{}, "", false
	}
	err := json.Unmarshal([]byte(ev.data), &line)
	switch {
	case err == nil && ev.name == "" && line.Result != nil && line.Error == nil:
	case err == nil && ev.name == "error" && line.Error != nil && line.Result == nil:
	default:
		s.t.Fatalf("got event %q with data %q, want a message with {\"result\":{\"name\":...}} or an error event with {\"error\":{...}}", ev.name, ev.data)
	}
	return line, ev.data, true
}

// nextComment reads up to the next comment line, and fails the test if an
// event or the end of the response comes first.
func (s *sseStream) nextComment() {
	s.t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("read comment: %v (line so far %q)", err, line)
		}
		switch {
		case strings.HasPrefix(line, ":"):
			return
		case line != "\n":
			s.t.Fatalf("got line %q, want a comment", line)
		}
	}
}

// checkStart checks the response headers and the first event, which only
// sets how long EventSource waits to reconnect.
func (s *sseStream) checkStart() {
	s.t.Helper()
	if got, want := s.resp.StatusCode, http.StatusOK; got != want {
		s.t.Fatalf("status = %d, want %d", got, want)
	}
	if mt, _, _ := mime.ParseMediaType(s.resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		s.t.Errorf("content type = %q, want text/event-stream", mt)
	}
	if got, want := s.resp.Header.Get("Cache-Control"), "no-store"; got != want {
		s.t.Errorf("Cache-Control = %q, want %q", got, want)
	}
	ev, ok := s.nextEvent()
	if !ok || ev.retry == "" || ev.data != "" {
		s.t.Errorf("first event = %+v (present: %v), want a retry: line alone", ev, ok)
	}
}

func TestServerSentEvents(t *testing.T) {
	ts, _ := serveGateway(t)
	tests := []struct {
		name  string
		query string
		want  string
	}{
		{name: "category", query: "category=science", want: "science"},
		{name: "category in upper case", query: "category=SPACE", want: "space"},
		{name: "no category is the default", query: "", want: "animals"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openSSE(t, ts, tt.query)
			s.checkStart()
			// Names come one by one while the response is open, which
			// also shows that flushes pass through the request logger.
			wantNames(t, s, tt.want, 3)
		})
	}
}

// TestServerSentEventsErrors: errors, the first included, are error events
// on a 200 response, since EventSource hides the body of any other status.
func TestServerSentEventsErrors(t *testing.T) {
	t.Run("unknown category", func(t *testing.T) {
		ts, _ := serveGateway(t)
		s := openSSE(t, ts, "category=plants")
		s.checkStart()
		endsWithError(t, s, 3, `unknown category "plants": valid categories are animals, science, space`)
	})
	t.Run("server shuts down", func(t *testing.T) {
		ts, shutdown := serveGateway(t)
		s := openSSE(t, ts, "category=space")
		s.checkStart()
		wantNames(t, s, "space", 1)
		shutdown()
		endsWithError(t, s, 14, "server is shutting down")
	})
}

// startQuietGateway is startGatewayWith over a server whose streams send
// their first codename at once and the next an hour later, as with
// CODENAME_STREAM_INTERVAL=1h: in between the gateway has nothing to write
// but heartbeats.
func startQuietGateway(t *testing.T, opts gateway.Options) http.Handler {
	t.Helper()
	conn, _ := serveCodenames(t, server.Config{StreamInterval: time.Hour, DrainTimeout: time.Second})
	return newGateway(t, conn, opts)
}

// holdingProxy relays TCP connections to addr as HAProxy 2.6 relays an
// event stream: when a client closes its connection, the one to addr stays
// open until addr sends something that can no longer be delivered. It
// returns the address to connect to. Every connection ends with the test.
func holdingProxy(t *testing.T, addr string) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
		relays sync.WaitGroup
	)
	track := func(c net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			_ = c.Close()
		}
		conns = append(conns, c)
	}
	relays.Go(func() {
		for {
			client, err := lis.Accept()
			if err != nil {
				return
			}
			track(client)
			backend, err := net.Dial("tcp", addr)
			if err != nil {
				_ = client.Close()
				continue
			}
			track(backend)
			// Plain reads and writes (no splice through ReadFrom), so
			// that closing client fails the next write to it at once.
			relays.Go(func() {
				_, _ = io.Copy(struct{ io.Writer }{backend}, struct{ io.Reader }{client})
				_ = client.Close() // and not backend: that is the point
			})
			relays.Go(func() {
				_, _ = io.Copy(struct{ io.Writer }{client}, struct{ io.Reader }{backend})
				_ = backend.Close()
				_ = client.Close()
			})
		}
	})
	t.Cleanup(func() {
		_ = lis.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		relays.Wait()
	})
	return lis.Addr().String()
}

// TestServerSentEventsHeartbeat: while no codename is due, the stream
// carries a comment every SSEHeartbeat, which EventSource ignores and
// proxies count as traffic.
func TestServerSentEventsHeartbeat(t *testing.T) {
	ts := serveHTTP1(t, startQuietGateway(t, gateway.Options{SSEHeartbeat: 50 * time.Millisecond}))
	s := openSSE(t, ts, "category=space")
	s.checkStart()
	wantNames(t, s, "space", 1)
	for range 3 {
		s.nextComment()
	}
}

// TestServerSentEventsClientGone: behind a proxy that keeps a departed
// client's close to itself, as HAProxy 2.6 does, the heartbeat is what
// ends the handler, and with it the gRPC stream, long before the next
// codename is due.
func TestServerSentEventsClientGone(t *testing.T) {
	const heartbeat = 50 * time.Millisecond
	h := startQuietGateway(t, gateway.Options{SSEHeartbeat: heartbeat})
	returned := make(chan struct{}, 1) // one request
	ts := serveHTTP1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { returned <- struct{}{} }()
		h.ServeHTTP(w, r)
	}))
	proxy := holdingProxy(t, ts.Listener.Addr().String())

	s := openSSEAt(t, ts.Client(), "http://"+proxy, "category=space")
	s.checkStart()
	wantNames(t, s, "space", 1)
	// Closing a body not read to its end closes the connection.
	_ = s.resp.Body.Close()
	left := time.Now()
	select {
	case <-returned:
		t.Logf("handler returned %v after the client left", time.Since(left))
	case <-time.After(waitTimeout):
		t.Fatalf("handler still running %v after the client left, with a heartbeat every %v", waitTimeout, heartbeat)
	}
}
