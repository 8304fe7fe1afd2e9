package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// streamLine is one message of a codename stream, on any transport.
type streamLine struct {
	Result *nameBody  `json:"result"`
	Error  *errorBody `json:"error"`
}

func wsURL(s *system, secure bool) string {
	if secure {
		return "wss://" + s.cfg.HTTPSAddr + "/v1/codenames:stream"
	}
	return "ws://" + s.cfg.HTTPAddr + "/v1/codenames:stream"
}

func dialWS(t *testing.T, s *system, secure bool, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: s.tlsConfig("http/1.1")}
	t.Cleanup(tr.CloseIdleConnections)
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return websocket.Dial(ctx, wsURL(s, secure), &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}, HTTPHeader: h})
}

func readWS(t *testing.T, ctx context.Context, c *websocket.Conn) streamLine {
	t.Helper()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var l streamLine
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatalf("message %q: %v", b, err)
	}
	return l
}

// TestWebSocketBidi changes category on an open WebSocket through HAProxy,
// as the web page does.
func TestWebSocketBidi(t *testing.T) {
	s := shared(t)
	for _, sec := range security {
		t.Run(sec.name, func(t *testing.T) {
			origin := "http://" + s.cfg.HTTPAddr
			if sec.secure {
				origin = "https://" + s.cfg.HTTPSAddr
			}
			c, _, err := dialWS(t, s, sec.secure, origin)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			send := func(category string) {
				t.Helper()
				if err := c.Write(ctx, websocket.MessageText, []byte(`{"category":"`+category+`"}`)); err != nil {
					t.Fatal(err)
				}
			}
			send("animals")
			for range 2 {
				if l := readWS(t, ctx, c); l.Result == nil || categoryOf(l.Result.Name) != "animals" {
					t.Fatalf("got %+v, want an animals codename", l)
				}
			}
			send("science")
			switched := false
			for range 3 {
				if l := readWS(t, ctx, c); l.Result != nil && categoryOf(l.Result.Name) == "science" {
					switched = true
					break
				}
			}
			if !switched {
				t.Fatal("the category change did not reach the open socket")
			}
			if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
}

func TestWebSocketRefusesOtherOrigins(t *testing.T) {
	s := shared(t)
	_, resp, err := dialWS(t, s, true, "https://elsewhere.example")
	if err == nil {
		t.Fatal("a page from another origin opened a stream")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("got %v, want 403 Forbidden", resp)
	}
}

func TestWebSocketBadInput(t *testing.T) {
	s := shared(t)
	for _, tt := range []struct {
		name, msg, want string
		wantClose       websocket.StatusCode
	}{
		{"unknown category", `{"category":"dragons"}`, "valid categories are", websocket.StatusPolicyViolation},
		{"malformed JSON", `{"category":`, "request stream", websocket.StatusPolicyViolation},
		{"unknown field", `{"categroy":"animals"}`, `unknown field "categroy"`, websocket.StatusPolicyViolation},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := dialWS(t, s, true, "")
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := c.Write(ctx, websocket.MessageText, []byte(tt.msg)); err != nil {
				t.Fatal(err)
			}
			l := readWS(t, ctx, c)
			if l.Error == nil || l.Error.Code != 3 || !strings.Contains(l.Error.Message, tt.want) {
				t.Fatalf("got %+v, want an error with code 3 and %q", l, tt.want)
			}
			_, _, err = c.Read(ctx)
			if got := websocket.CloseStatus(err); got != tt.wantClose {
				t.Errorf("closed with %v (%v), want %v", got, err, tt.wantClose)
			}
		})
	}
}

// TestServerSentEvents reads the stream as EventSource and curl -N do.
func TestServerSentEvents(t *testing.T) {
	s := shared(t)
	for _, tp := range []transport{transports[1], transports[2]} {
		t.Run(tp.name, func(t *testing.T) {
			events := func(category string, n int) []sseEvent {
				ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
				defer cancel()
				req, err := http.NewRequestWithContext(ctx, "GET", tp.url(s, "/v1/codenames:stream?category="+category), nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Accept", "text/event-stream")
				resp, err := tp.client(t, s).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
					t.Fatalf("got %s %q, want 200 text/event-stream", resp.Status, ct)
				}
				return readEvents(t, bufio.NewReader(resp.Body), n)
			}

			for _, ev := range events("science", 3) {
				var l streamLine
				if err := json.Unmarshal([]byte(ev.data), &l); err != nil || ev.name != "" || l.Result == nil || categoryOf(l.Result.Name) != "science" {
					t.Errorf("event %+v: want a message event with a science codename (%v)", ev, err)
				}
			}
			evs := events("dragons", 1)
			var l streamLine
			if err := json.Unmarshal([]byte(evs[0].data), &l); err != nil || evs[0].name != "error" || l.Error == nil || l.Error.Code != 3 {
				t.Errorf("event %+v: want an error event with code 3 (%v)", evs[0], err)
			}
		})
	}
}

type sseEvent struct{ name, data string }

// readEvents parses n events (or fewer, if the stream ends) of an SSE body.
func readEvents(t *testing.T, r *bufio.Reader, n int) []sseEvent {
	t.Helper()
	var (
		evs []sseEvent
		cur sseEvent
	)
	for len(evs) < n {
		line, err := r.ReadString('\n')
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || len(evs) == 0 {
				t.Fatalf("after %d events: %v", len(evs), err)
			}
			return evs
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if cur.data != "" {
				evs = append(evs, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data += strings.TrimPrefix(line, "data: ")
		}
	}
	return evs
}
