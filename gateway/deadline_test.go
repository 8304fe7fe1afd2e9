package gateway_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/gateway"
)

// stallingServer never answers a unary call; on a stream it sends a name
// every 20 ms until the client goes away.
func stallingServer(_ any, stream grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(stream)
	if method != codenamev1.CodenameCreator_KeepGettingCodenames_FullMethodName {
		<-stream.Context().Done()
		return stream.Context().Err()
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case <-tick.C:
			if err := stream.SendMsg(&codenamev1.NameResult{Name: "Stalling Server"}); err != nil {
				return err
			}
		}
	}
}

// TestCallTimeout: a unary call that the server does not answer ends with
// 504 after CallTimeout, or sooner if the client's Grpc-Timeout says so;
// a stream outlives CallTimeout.
func TestCallTimeout(t *testing.T) {
	const callTimeout = 500 * time.Millisecond
	h := fakeGateway(t, grpc.NewServer(grpc.UnknownServiceHandler(stallingServer)), gateway.Options{CallTimeout: callTimeout})

	tests := []struct {
		name        string
		method      string
		target      string
		grpcTimeout string
		atLeast     time.Duration
		atMost      time.Duration
	}{
		{name: "get", method: "GET", target: "/v1/codename", atLeast: callTimeout, atMost: callTimeout + 2*time.Second},
		{name: "post", method: "POST", target: "/v1/codename", atLeast: callTimeout, atMost: callTimeout + 2*time.Second},
		{name: "list categories", method: "GET", target: "/v1/categories", atLeast: callTimeout, atMost: callTimeout + 2*time.Second},
		{name: "a shorter Grpc-Timeout wins", method: "GET", target: "/v1/codename", grpcTimeout: "50m",
			atLeast: 50 * time.Millisecond, atMost: callTimeout - 150*time.Millisecond},
		{name: "a longer Grpc-Timeout does not", method: "GET", target: "/v1/codename", grpcTimeout: "60S",
			atLeast: callTimeout, atMost: callTimeout + 2*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Without a deadline of its own, the call would wait for
			// this one, the client's patience.
			ctx, cancel := context.WithTimeout(t.Context(), callTimeout+3*time.Second)
			defer cancel()
			var body io.Reader
			if tt.method == "POST" {
				body = strings.NewReader(`{"category":"space"}`)
			}
			r := httptest.NewRequestWithContext(ctx, tt.method, tt.target, body)
			if tt.grpcTimeout != "" {
				r.Header.Set("Grpc-Timeout", tt.grpcTimeout)
			}
			rec := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(rec, r)
			elapsed := time.Since(start)
			if rec.Code != http.StatusGatewayTimeout {
				t.Errorf("status = %d, want 504; body:\n%s", rec.Code, rec.Body)
			}
			if elapsed < tt.atLeast || elapsed > tt.atMost {
				t.Errorf("answered after %v, want between %v and %v", elapsed, tt.atLeast, tt.atMost)
			}
		})
	}

	t.Run("stream", func(t *testing.T) {
		ts := serveHTTP2(t, h)
		s := openRESTStream(t, ts, `{"category":"space"}`)
		deadline := time.Now().Add(3 * callTimeout)
		for time.Now().Before(deadline) {
			line, raw, ok := s.next()
			if !ok || line.Result == nil {
				t.Fatalf("stream ended (%s) after less than 3 x CallTimeout", raw)
			}
		}
	})
}
