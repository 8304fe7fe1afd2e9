package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// dialWebSocket opens the stream on ts as a WebSocket with the given
// request headers. The socket is closed when the test ends.
func dialWebSocket(t *testing.T, ts *httptest.Server, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	return dialWebSocketAt(t, ts.Client(), ts.URL, header)
}

// dialWebSocketAt is dialWebSocket through c to the server at base.
func dialWebSocketAt(t *testing.T, c *http.Client, base string, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	url := "ws" + strings.TrimPrefix(base, "http") + "/v1/codenames:stream"
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: c, HTTPHeader: header})
	if conn != nil {
		t.Cleanup(func() { _ = conn.CloseNow() })
	}
	return conn, resp, err
}

// wsStream is an open WebSocket stream.
type wsStream struct {
	t    *testing.T
	ctx  context.Context
	conn *websocket.Conn
	end  error // what ended the socket, once next has said it ended
}

// openWebSocket opens the stream on ts as a WebSocket, which reads end
// with the test, or after waitTimeout.
func openWebSocket(t *testing.T, ts *httptest.Server) *wsStream {
	t.Helper()
	return openWebSocketAt(t, ts.Client(), ts.URL)
}

// openWebSocketAt is openWebSocket through c to the server at base.
func openWebSocketAt(t *testing.T, c *http.Client, base string) *wsStream {
	t.Helper()
	conn, _, err := dialWebSocketAt(t, c, base, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return &wsStream{t: t, ctx: ctx, conn: conn}
}

func (s *wsStream) write(msg string) {
	s.t.Helper()
	if err := s.conn.Write(s.ctx, websocket.MessageText, []byte(msg)); err != nil {
		s.t.Fatalf("write %q: %v", msg, err)
	}
}

// next reads one message, or returns ok false once the socket has ended,
// keeping what ended it in s.end.
func (s *wsStream) next() (line streamLine, raw string, ok bool) {
	s.t.Helper()
	typ, data, err := s.conn.Read(s.ctx)
	if err != nil {
		s.end = err
		s.t.Logf("socket ended: %v", err)
		return streamLine{}, "", false
	}
	if typ != websocket.MessageText {
		s.t.Fatalf("got a %v message, want text", typ)
	}
	if err := json.Unmarshal(data, &line); err != nil {
		s.t.Fatalf("message is not JSON: %v\n%s", err, data)
	}
	return line, string(data), true
}

// closedWith checks that the socket ended with the close status want.
func (s *wsStream) closedWith(want websocket.StatusCode) {
	s.t.Helper()
	if got := websocket.CloseStatus(s.end); got != want {
		s.t.Errorf("socket closed with %v (%v), want %v", got, s.end, want)
	}
}

// TestWebSocket checks the stream over a WebSocket, through the request
// logger, which must let the WebSocket library take the connection over.
func TestWebSocket(t *testing.T) {
	ts, _ := serveGateway(t)
	s := openWebSocket(t, ts)
	s.write(`{"category":"science"}`)
	wantNames(t, s, "science", 2)
	s.write(`{"category":"SPACE"}`)
	switchTo(t, s, "science", "space", 0)
	if err := s.conn.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Errorf("close: %v", err)
	}
}

// TestWebSocketOrigin: only pages of the gateway's own origin may open a
// socket, so that another site cannot use a visitor's credentials.
func TestWebSocketOrigin(t *testing.T) {
	ts, _ := serveGateway(t)
	tests := []struct {
		name     string
		origin   string
		wantCode int
	}{
		{name: "no origin (not a browser)", wantCode: http.StatusSwitchingProtocols},
		{name: "same origin", origin: ts.URL, wantCode: http.StatusSwitchingProtocols},
		{name: "foreign origin", origin: "https://evil.example", wantCode: http.StatusForbidden},
		{name: "same host name, other port", origin: "http://127.0.0.1:1", wantCode: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{}
			if tt.origin != "" {
				header.Set("Origin", tt.origin)
			}
			_, resp, err := dialWebSocket(t, ts, header)
			if resp == nil {
				t.Fatalf("dial: no response (%v)", err)
			}
			if resp.StatusCode != tt.wantCode {
				t.Errorf("handshake status = %d (%v), want %d", resp.StatusCode, err, tt.wantCode)
			}
		})
	}
}

func TestWebSocketErrors(t *testing.T) {
	ts, _ := serveGateway(t)
	tests := []struct {
		name        string
		first       string // "" to send only write
		write       string
		wantMessage string
	}{
		{name: "malformed first message", write: `{"category": nope}`, wantMessage: "request stream: "},
		{name: "malformed message mid-stream", first: `{"category":"space"}`, write: `{"category": nope}`,
			wantMessage: "request stream: "},
		{name: "unknown field", first: `{"category":"space"}`, write: `{"categroy":"space"}`, wantMessage: `"categroy"`},
		{name: "unknown category", write: `{"category":"plants"}`,
			wantMessage: `unknown category "plants": valid categories are animals, science, space`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openWebSocket(t, ts)
			if tt.first != "" {
				s.write(tt.first)
				nextCategory(t, s)
			}
			s.write(tt.write)
			endsWithError(t, s, 3, tt.wantMessage)
			s.closedWith(websocket.StatusPolicyViolation)
		})
	}
}

// TestWebSocketServerShutdown: when the gRPC server drains, the page is
// told UNAVAILABLE and the socket closes with "service restart", so the
// page knows that reconnecting makes sense.
func TestWebSocketServerShutdown(t *testing.T) {
	ts, shutdown := serveGateway(t)
	s := openWebSocket(t, ts)
	s.write(`{"category":"animals"}`)
	wantNames(t, s, "animals", 1)
	shutdown()
	endsWithError(t, s, 14, "server is shutting down")
	s.closedWith(websocket.StatusServiceRestart)
}
