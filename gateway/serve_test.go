package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/codename-gateway/codename-gateway/gateway"
	"github.com/codename-gateway/codename-gateway/internal/poll"
)

// startServe runs gateway.Serve with h and d on a loopback port, and
// returns its address, the function that ends its context, and a channel
// that is closed when it has returned, with what it returned.
func startServe(t *testing.T, h http.Handler, d gateway.Drain) (addr string, stop context.CancelFunc, served <-chan struct{}, err *error) {
	t.Helper()
	lis, lerr := net.Listen("tcp", "127.0.0.1:0")
	if lerr != nil {
		t.Fatal(lerr)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	err = new(error)
	go func() {
		defer close(done)
		*err = gateway.Serve(ctx, lis, h, d)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Error("Serve did not return after its context ended")
		}
	})
	return lis.Addr().String(), cancel, done, err
}

// getStatus returns the status of GET url, and its body.
func getStatus(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestServeDrains: when Serve's context ends, /healthz says 503 NOT_SERVING
// for the drain delay while everything else is still served; then every
// stream ends with UNAVAILABLE, a WebSocket with close code 1012 (Service
// Restart), and Serve returns.
func TestServeDrains(t *testing.T) {
	const delay = time.Second
	h, _ := startGateway(t)
	addr, stop, served, serveErr := startServe(t, h, gateway.Drain{Delay: delay, Timeout: 5 * time.Second})
	base := "http://" + addr
	c := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(c.CloseIdleConnections)

	if code, body := getStatus(t, c, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d before the drain, want 200:\n%s", code, body)
	}

	// A WebSocket, an NDJSON stream and an SSE stream, each with a name.
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/v1/codenames:stream", nil)
	if err != nil {
		t.Fatalf("WebSocket dial: %v", err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"category":"space"}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws.Read(ctx); err != nil {
		t.Fatalf("WebSocket: no first name: %v", err)
	}

	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/codenames:stream", pr)
	req.Header.Set("Content-Type", "application/json")
	go func() { _, _ = io.WriteString(pw, `{"category":"animals"}`) }()
	ndjsonResp, err := c.Do(req)
	if err != nil {
		t.Fatalf("NDJSON stream: %v", err)
	}
	defer ndjsonResp.Body.Close()
	ndjson := bufio.NewScanner(ndjsonResp.Body)
	if !ndjson.Scan() {
		t.Fatalf("NDJSON stream: no first line: %v", ndjson.Err())
	}

	req, _ = http.NewRequestWithContext(ctx, "GET", base+"/v1/codenames:stream?category=science", nil)
	req.Header.Set("Accept", "text/event-stream")
	sseResp, err := c.Do(req)
	if err != nil {
		t.Fatalf("SSE stream: %v", err)
	}
	defer sseResp.Body.Close()
	sse := bufio.NewScanner(sseResp.Body)

	stop()
	stopped := time.Now()

	// Health says NOT_SERVING at once; the rest is served as before.
	var healthCode int
	var healthBody string
	if _, ok := poll.Until(time.Until(stopped.Add(delay/2)), func() bool {
		healthCode, healthBody = getStatus(t, c, base+"/healthz")
		return healthCode == http.StatusServiceUnavailable && strings.Contains(healthBody, "NOT_SERVING")
	}); !ok {
		t.Fatalf("/healthz = %d during the drain delay, want 503 NOT_SERVING:\n%s", healthCode, healthBody)
	}
	if code, body := getStatus(t, c, base+"/v1/codename?category=space"); code != http.StatusOK {
		t.Errorf("GET /v1/codename = %d during the drain delay, want 200:\n%s", code, body)
	}

	// The WebSocket is told UNAVAILABLE, then closed with 1012, once the
	// delay is over.
	var wsErr struct {
		Error *apiError `json:"error"`
	}
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			if got := websocket.CloseStatus(err); got != websocket.StatusServiceRestart {
				t.Errorf("WebSocket closed with %v (%v), want %v", got, err, websocket.StatusServiceRestart)
			}
			var ce websocket.CloseError
			if errors.As(err, &ce) && ce.Reason == "" {
				t.Error("WebSocket closed without a reason")
			}
			break
		}
		if err := json.Unmarshal(data, &wsErr); err != nil {
			t.Fatalf("WebSocket message is not JSON: %v\n%s", err, data)
		}
	}
	if elapsed := time.Since(stopped); elapsed < delay {
		t.Errorf("WebSocket closed %v after the drain began, before the delay of %v was over", elapsed, delay)
	}
	if wsErr.Error == nil || wsErr.Error.Code != 14 {
		t.Errorf("last WebSocket message has error %+v, want code 14", wsErr.Error)
	}

	// The NDJSON stream ends with an UNAVAILABLE line, the SSE stream with
	// an UNAVAILABLE error event.
	last := ""
	for ndjson.Scan() {
		last = ndjson.Text()
	}
	if !strings.Contains(last, `"error"`) || !strings.Contains(last, `"code":14`) {
		t.Errorf("NDJSON stream's last line = %s, want an error with code 14", last)
	}
	var sawErrorEvent bool
	last = ""
	for sse.Scan() {
		if sse.Text() == "event: error" {
			sawErrorEvent = true
		}
		if strings.HasPrefix(sse.Text(), "data: ") {
			last = sse.Text()
		}
	}
	if !sawErrorEvent || !strings.Contains(last, `"code":14`) {
		t.Errorf("SSE stream's last data = %s (error event: %v), want an error with code 14", last, sawErrorEvent)
	}

	select {
	case <-served:
		if *serveErr != nil {
			t.Errorf("Serve: %v", *serveErr)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Serve did not return")
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("the listener still accepts connections after Serve returned")
	}

	// A stream that reaches the handler after that (through a listener
	// that was not closed, or on a connection that was still open) is
	// refused the same way.
	ts := serveHTTP1(t, h)
	if _, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/v1/codenames:stream", nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("WebSocket after the drain: %v, %v; want a 503", resp, err)
	}
	// The refusal is the plain JSON error body if the call could not
	// start, or an error line if it ended at once: either is a 503.
	req, _ = http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/codenames:stream", strings.NewReader(`{"category":"space"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("NDJSON stream after the drain: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"code":14`) || !strings.Contains(string(body), "restarting") {
		t.Errorf("NDJSON stream after the drain: status %d, body %s; want 503 with code 14 and a message saying the gateway is restarting", resp.StatusCode, body)
	}
}
