package gateway_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/coder/websocket"

	"github.com/codename-gateway/codename-gateway/gateway"
	"github.com/codename-gateway/codename-gateway/internal/grpctest"
	"github.com/codename-gateway/codename-gateway/internal/tlsreload/tlstest"
)

// protoHandler answers with the request's protocol, and accepts a
// WebSocket on /ws that sends that protocol as its one message.
var protoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil {
		http.Error(w, "not over TLS", http.StatusInternalServerError)
		return
	}
	if r.URL.Path == "/ws" {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_ = c.Write(r.Context(), websocket.MessageText, []byte(r.Proto))
		_ = c.Close(websocket.StatusNormalClosure, "")
		return
	}
	_, _ = io.WriteString(w, r.Proto)
})

// startServeTLS runs gateway.ServeTLS with protoHandler on a loopback port
// with a certificate for "codename-gateway" of a new CA; with clientCA,
// clients need a certificate of that CA. It returns the address and client
// configs with and without a client certificate.
func startServeTLS(t *testing.T, clientCA bool) (addr string, withCert, withoutCert *tls.Config) {
	t.Helper()
	ca := tlstest.NewCA(t, "test")
	serverTLS := ca.ServerConfig(t, "codename-gateway", clientCA)
	client := ca.Issue(t, "haproxy", "haproxy")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpctest.Run(t, lis, waitTimeout, func(ctx context.Context, lis net.Listener) error {
		return gateway.ServeTLS(ctx, lis, protoHandler, gateway.Drain{}, serverTLS)
	})
	return lis.Addr().String(),
		ca.ClientConfig(t, "codename-gateway", &client),
		ca.ClientConfig(t, "codename-gateway", nil)
}

// clientFor offers only alpn, as HAProxy's `alpn h2` or `alpn http/1.1`
// server lines do.
func clientFor(cfg *tls.Config, alpn string) *http.Client {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{alpn}
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: alpn == "h2"}
	return &http.Client{Transport: tr, Timeout: waitTimeout}
}

// TestServeTLS checks that ServeTLS answers HTTP/2 and HTTP/1.1 as ALPN
// chooses, WebSockets over HTTP/1.1 included, and no cleartext.
func TestServeTLS(t *testing.T) {
	addr, cfg, _ := startServeTLS(t, false)
	for _, tc := range []struct{ alpn, want string }{
		{"h2", "HTTP/2.0"},
		{"http/1.1", "HTTP/1.1"},
	} {
		t.Run(tc.alpn, func(t *testing.T) {
			code, body := getStatus(t, clientFor(cfg, tc.alpn), "https://"+addr+"/")
			if code != http.StatusOK || body != tc.want {
				t.Errorf("GET over %s = %d %q, want 200 %q", tc.alpn, code, body, tc.want)
			}
		})
	}
	t.Run("websocket", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "wss://"+addr+"/ws", &websocket.DialOptions{HTTPClient: clientFor(cfg, "http/1.1")})
		if err != nil {
			t.Fatalf("WebSocket over TLS: %v", err)
		}
		defer c.CloseNow()
		_, msg, err := c.Read(ctx)
		if err != nil || string(msg) != "HTTP/1.1" {
			t.Errorf("WebSocket message = %q, %v; want HTTP/1.1", msg, err)
		}
	})
	t.Run("cleartext", func(t *testing.T) {
		c := &http.Client{Timeout: waitTimeout}
		resp, err := c.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Error("cleartext GET answered 200 on a TLS port")
			}
		}
	})
}

// TestServeTLSClientCertificates checks that with a client CA the gateway
// answers only clients with a certificate from it, over either protocol.
func TestServeTLSClientCertificates(t *testing.T) {
	addr, withCert, withoutCert := startServeTLS(t, true)
	for _, alpn := range []string{"h2", "http/1.1"} {
		t.Run(alpn, func(t *testing.T) {
			if code, _ := getStatus(t, clientFor(withCert, alpn), "https://"+addr+"/"); code != http.StatusOK {
				t.Errorf("GET with a client certificate = %d, want 200", code)
			}
			resp, err := clientFor(withoutCert, alpn).Get("https://" + addr + "/")
			if err == nil {
				resp.Body.Close()
				t.Errorf("GET without a client certificate = %d, want a refused handshake", resp.StatusCode)
			}
		})
	}
}
