package gateway_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/codename-gateway/codename-gateway/gateway"
	"github.com/codename-gateway/codename-gateway/internal/grpctest"
	"github.com/codename-gateway/codename-gateway/internal/poll"
)

// startServe runs gateway.Serve with h and d on a loopback port until the
// test ends, and returns its address and its stop (see grpctest.Run).
func startServe(t *testing.T, h http.Handler, d gateway.Drain) (addr string, stop grpctest.Stop) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop = grpctest.Run(t, lis, waitTimeout, func(ctx context.Context, lis net.Listener) error {
		return gateway.Serve(ctx, lis, h, d)
	})
	return lis.Addr().String(), stop
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
	addr, stop := startServe(t, h, gateway.Drain{Delay: delay, Timeout: 5 * time.Second})
	base := "http://" + addr
	c := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(c.CloseIdleConnections)

	if code, body := getStatus(t, c, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d before the drain, want 200:\n%s", code, body)
	}

	// A WebSocket, an NDJSON stream and an SSE stream, each with a name.
	ws := openWebSocketAt(t, c, base)
	ws.write(`{"category":"space"}`)
	nextCategory(t, ws)
	ndjson := openRESTStreamAt(t, c, base, 1, `{"category":"animals"}`)
	nextCategory(t, ndjson)
	sse := openSSEAt(t, c, base, "category=science")
	sse.checkStart()
	nextCategory(t, sse)

	stopped := time.Now()
	served := make(chan error, 1)
	go func() {
		_, err := stop()
		served <- err
	}()

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
	endsWithError(t, ws, 14, "the gateway is restarting")
	ws.closedWith(websocket.StatusServiceRestart)
	if ce := (websocket.CloseError{}); errors.As(ws.end, &ce) && ce.Reason == "" {
		t.Error("WebSocket closed without a reason")
	}
	if elapsed := time.Since(stopped); elapsed < delay {
		t.Errorf("WebSocket closed %v after the drain began, before the delay of %v was over", elapsed, delay)
	}

	// The NDJSON stream ends with an UNAVAILABLE line, the SSE stream with
	// an UNAVAILABLE error event.
	endsWithError(t, ndjson, 14, "the gateway is restarting")
	endsWithError(t, sse, 14, "the gateway is restarting")

	if err := <-served; err != nil { // stop waits waitTimeout at most
		t.Errorf("Serve: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("the listener still accepts connections after Serve returned")
	}

	// A stream that reaches the handler after that (through a listener
	// that was not closed, or on a connection that was still open) is
	// refused the same way.
	ts := serveHTTP1(t, h)
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	if _, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/v1/codenames:stream", nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("WebSocket after the drain: %v, %v; want a 503", resp, err)
	}
	// The refusal is the plain JSON error body if the call could not
	// start, or an error line if it ended at once: either is a 503.
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/codenames:stream", strings.NewReader(`{"category":"space"}`))
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
