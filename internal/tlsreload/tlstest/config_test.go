package tlstest_test

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/tlsreload/tlstest"
)

// TestConfigs checks that a client config of the CA completes a mutual
// handshake with a server config of it, and that one without a certificate,
// or for another name, does not.
func TestConfigs(t *testing.T) {
	ca := tlstest.NewCA(t, "test")
	lis, err := tls.Listen("tcp", "127.0.0.1:0", ca.ServerConfig(t, "codename-server", true))
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if c.(*tls.Conn).Handshake() == nil {
				_, _ = c.Write([]byte("x"))
			}
			c.Close()
		}
	}()
	client := ca.Issue(t, "client", "codename-gateway")
	for _, tc := range []struct {
		name   string
		cfg    *tls.Config
		wantOK bool
	}{
		{"with certificate", ca.ClientConfig(t, "codename-server", &client), true},
		{"without certificate", ca.ClientConfig(t, "codename-server", nil), false},
		{"another name", ca.ClientConfig(t, "elsewhere", &client), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", lis.Addr().String(), tc.cfg)
			if err == nil {
				// The server writes only once it has accepted the client: TLS
				// 1.3 tells a client of a refused certificate at its first read.
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				_, err = conn.Read(make([]byte, 1))
				conn.Close()
			}
			if ok := err == nil; ok != tc.wantOK {
				t.Errorf("handshake: %v, want success %v", err, tc.wantOK)
			}
		})
	}
}
