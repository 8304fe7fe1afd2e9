package server

import (
	"context"
	"crypto/tls"
	"net/http"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/tlsreload/tlstest"
)

// getCodename makes one call on a new connection with creds.
func getCodename(t *testing.T, addr string, creds credentials.TransportCredentials) error {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	_, err = codenamev1.NewCodenameCreatorClient(conn).GetCodename(ctx, &codenamev1.NameRequest{Category: "science"})
	return err
}

// TestTLSServesGRPCAndHealthz checks that with Config.TLS the one port
// answers gRPC over TLS (ALPN h2) and /healthz over TLS with http/1.1, and
// nothing in cleartext.
func TestTLSServesGRPCAndHealthz(t *testing.T) {
	ca := tlstest.NewCA(t, "test")
	s := startTCPServer(t, Config{TLS: ca.ServerConfig(t, "codename-server", false)})
	clientTLS := ca.ClientConfig(t, "codename-server", nil)

	if err := getCodename(t, s.addr, credentials.NewTLS(clientTLS)); err != nil {
		t.Errorf("GetCodename over TLS: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	code, body, err := httpGet(ctx, s.addr, "/healthz", clientTLS)
	if err != nil || code != http.StatusOK || body != "SERVING\n" {
		t.Errorf("GET /healthz over TLS = %d %q, %v; want 200 SERVING", code, body, err)
	}

	if err := getCodename(t, s.addr, insecure.NewCredentials()); err == nil {
		t.Error("GetCodename in cleartext succeeded on a TLS port")
	}
	if _, _, err := httpGet(ctx, s.addr, "/healthz", nil); err == nil {
		t.Error("GET /healthz in cleartext succeeded on a TLS port")
	}
}

// TestTLSClientCertificates checks that with a client CA only clients with
// a certificate from it are answered, on gRPC and on /healthz.
func TestTLSClientCertificates(t *testing.T) {
	ca := tlstest.NewCA(t, "test")
	s := startTCPServer(t, Config{TLS: ca.ServerConfig(t, "codename-server", true)})
	client := ca.Issue(t, "client", "codename-gateway")
	stranger := tlstest.NewCA(t, "stranger").Issue(t, "stranger", "codename-gateway")
	strangerTLS := ca.ClientConfig(t, "codename-server", nil)
	strangerCert, err := tls.LoadX509KeyPair(stranger.CertFile, stranger.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	strangerTLS.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &strangerCert, nil }

	for _, tc := range []struct {
		name   string
		cfg    *tls.Config
		wantOK bool
	}{
		{"with certificate", ca.ClientConfig(t, "codename-server", &client), true},
		{"without certificate", ca.ClientConfig(t, "codename-server", nil), false},
		{"certificate of another CA", strangerTLS, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := getCodename(t, s.addr, credentials.NewTLS(tc.cfg))
			if (err == nil) != tc.wantOK {
				t.Errorf("GetCodename: err = %v, want success %v", err, tc.wantOK)
			}
			ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
			defer cancel()
			code, _, err := httpGet(ctx, s.addr, "/healthz", tc.cfg)
			if ok := err == nil && code == http.StatusOK; ok != tc.wantOK {
				t.Errorf("GET /healthz = %d, %v; want success %v", code, err, tc.wantOK)
			}
		})
	}
}
