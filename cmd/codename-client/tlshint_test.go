package main

import (
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/devtls"
)

// tlsServer serves every method with "Name" over TLS, with a certificate
// of a fresh development CA, whose file it returns.
func tlsServer(t *testing.T) (addr, ca string) {
	t.Helper()
	files, err := devtls.Ensure(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := devtls.LoadBundle(files.Server)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})),
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			if err := stream.RecvMsg(new(codenamev1.NameRequest)); err != nil {
				return err
			}
			return stream.SendMsg(&codenamev1.NameResult{Name: "Name"})
		}))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	_, port, _ := net.SplitHostPort(lis.Addr().String())
	return "localhost:" + port, files.CA
}

// TestClientSaysWhatToDoAboutTLS: when the CA is missing or TLS does not
// fit the port, the error is one line saying what to give instead of the
// x509 or file error.
func TestClientSaysWhatToDoAboutTLS(t *testing.T) {
	tlsAddr, ca := tlsServer(t)
	plainAddr, _ := fakeServer(t)
	missing := filepath.Join(t.TempDir(), "ca.pem")
	tests := []struct {
		name string
		args []string
		want string // the whole error
	}{
		{"CA file missing", []string{"-addr", tlsAddr, "-ca", missing},
			"-ca " + missing + ": no such file; the run command (scripts/run.sh) makes its CA at .state/tls/ca.pem in the repository's folder: give that path, or use -plaintext -addr localhost:8080 for the cleartext port"},
		{"no CA given, the server's is not the system's", []string{"-addr", tlsAddr},
			tlsAddr + " has a certificate from a CA this machine does not trust: give its CA with -ca (the run command's is -ca .state/tls/ca.pem), or use -plaintext -addr localhost:8080 for the cleartext port"},
		{"another CA given", []string{"-addr", tlsAddr, "-ca", "/etc/ssl/certs/ca-certificates.crt"},
			tlsAddr + " has a certificate that the CA in -ca /etc/ssl/certs/ca-certificates.crt did not sign: give the CA of that server (the run command's is .state/tls/ca.pem), or use -plaintext -addr localhost:8080 for the cleartext port"},
		{"stream without the CA", []string{"-addr", tlsAddr, "-stream", "-n", "1"},
			tlsAddr + " has a certificate from a CA this machine does not trust: give its CA with -ca (the run command's is -ca .state/tls/ca.pem), or use -plaintext -addr localhost:8080 for the cleartext port"},
		{"TLS to a cleartext port", []string{"-addr", plainAddr, "-ca", ca},
			plainAddr + " does not speak TLS: use -plaintext for a cleartext port"},
		{"cleartext to a TLS port", []string{"-addr", tlsAddr, "-plaintext"},
			tlsAddr + " closed the connection before HTTP/2 began: if it is a TLS port, leave out -plaintext (and give its CA with -ca, the run command's is .state/tls/ca.pem)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runClient(t, tt.args...)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got error %v\nwant        %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("the error has more than one line: %q", err)
			}
		})
	}
	// And with the right CA, the call goes through.
	if out, err := runClient(t, "-addr", tlsAddr, "-ca", ca); err != nil || out != "Name\n" {
		t.Errorf("with the CA: printed %q, error %v; want \"Name\\n\"", out, err)
	}
}
