package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"syscall"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/poll"
	"github.com/codename-gateway/codename-gateway/internal/runtest"
	"github.com/codename-gateway/codename-gateway/internal/tlsreload"
	"github.com/codename-gateway/codename-gateway/internal/tlsreload/tlstest"
)

// startTLSRun runs the server with its TLS variables set to the files of
// a new CA, which also signs a client certificate; it returns the gRPC
// address and the CA.
func startTLSRun(t *testing.T) (addr string, ca *tlstest.CA, r *runtest.Run) {
	t.Helper()
	ca = tlstest.NewCA(t, "test")
	pair := ca.Issue(t, "server", "codename-server")
	r = startRunEnv(t, map[string]string{
		"CODENAME_GRPC_TLS_CERT":      pair.CertFile,
		"CODENAME_GRPC_TLS_KEY":       pair.KeyFile,
		"CODENAME_GRPC_TLS_CLIENT_CA": ca.CertFile,
	}, "-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0")
	return r.Addr(t, "gRPC"), ca, r
}

func clientTLS(t *testing.T, files tlsreload.Files) *tls.Config {
	t.Helper()
	src, err := tlsreload.Load(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src.ClientConfig("codename-server")
}

func callTLS(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	_, err = codenamev1.NewCodenameCreatorClient(conn).GetCodename(ctx, &codenamev1.NameRequest{})
	return err
}

// TestTLSFromEnv: with the TLS variables set, the gRPC port serves gRPC
// and /healthz over TLS to clients with a certificate of the client CA
// only, and the admin listener stays cleartext.
func TestTLSFromEnv(t *testing.T) {
	addr, ca, r := startTLSRun(t)
	client := ca.Issue(t, "client", "codename-gateway")
	withCert := clientTLS(t, tlsreload.Files{Cert: client.CertFile, Key: client.KeyFile, CA: ca.CertFile})
	if err := callTLS(t, addr, withCert); err != nil {
		t.Errorf("GetCodename with a client certificate: %v", err)
	}
	if err := callTLS(t, addr, clientTLS(t, tlsreload.Files{CA: ca.CertFile})); err == nil {
		t.Error("GetCodename without a client certificate succeeded")
	}
	h1 := withCert.Clone()
	h1.NextProtos = []string{"http/1.1"}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: h1}, Timeout: waitTimeout}
	resp, err := hc.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over TLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz over TLS = %d, want 200", resp.StatusCode)
	}
	if code, _ := runtest.Get(t, r.Addr(t, "admin"), "/healthz"); code != http.StatusOK {
		t.Errorf("cleartext GET /healthz on the admin listener = %d, want 200", code)
	}
}

// TestTLSRotationWithoutRestart: a new certificate written over the files
// is presented on the next connections after SIGHUP, without a restart.
// (The change of the files alone would do it within a second too; that
// SIGHUP alone does is tlsreload's TestReloadOnSIGHUP.)
func TestTLSRotationWithoutRestart(t *testing.T) {
	addr, ca, r := startTLSRun(t)
	client := ca.Issue(t, "client", "codename-gateway")
	rotated := ca.Issue(t, "server", "codename-server") // the same files
	saw := func() *x509.Certificate {
		cfg := clientTLS(t, tlsreload.Files{Cert: client.CertFile, Key: client.KeyFile, CA: ca.CertFile})
		cfg.NextProtos = []string{"h2"}
		conn, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatalf("TLS dial: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if _, ok := poll.Until(waitTimeout, func() bool { return saw().Equal(rotated.Cert) }); !ok {
		t.Fatalf("rotated certificate not presented after SIGHUP; stderr:\n%s", r.Stderr)
	}
}
