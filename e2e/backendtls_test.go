package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/devtls"
	"github.com/codename-gateway/codename-gateway/internal/poll"
	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// callServerDirectly calls GetCodename on the first gRPC server itself,
// bypassing HAProxy, with creds.
func callServerDirectly(t *testing.T, s *system, creds credentials.TransportCredentials) error {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+s.cfg.GRPCAddrs[0], grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err = codenamev1.NewCodenameCreatorClient(conn).GetCodename(ctx, &codenamev1.NameRequest{Category: "space"})
	return err
}

// TestTLSOnEveryHop runs the stack with TLS behind the edge
// (CODENAME_BACKEND_TLS=on: HAProxy to the servers and the gateways, the
// gateways to the servers, each certificate verified against the CA and
// its name) and with mutual TLS (=mutual: the backends take calls only
// from a client with a certificate from the CA). Streams of every kind and
// unary calls go through; a backend refuses a cleartext caller, and with
// mutual TLS a caller without a client certificate.
func TestTLSOnEveryHop(t *testing.T) {
	for _, mode := range []string{"on", "mutual"} {
		t.Run(mode, func(t *testing.T) {
			// Separate: the gateways' own TLS to the servers is a hop here.
			s := start(t, backendTLS(mode), gatewayMode(stack.Separate))
			ctx, cancel := context.WithCancel(t.Context())
			wb := openWellBehaved(t, ctx, s, 1)
			wb.progress(t, make([]int64, len(wb.streams)))
			if _, err := s.grpcClient(t, true).GetCodename(t.Context(), &codenamev1.NameRequest{Category: "science"}); err != nil {
				t.Errorf("unary gRPC through the edge: %v", err)
			}
			if a, err := h1Raw(s.cfg.HTTPAddr, "GET /v1/codename?category=space HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil || a.status != 200 {
				t.Errorf("unary REST through the edge: %+v %v", a, err)
			}
			// HAProxy takes a server for UP until checks fail: each check
			// must have passed over TLS, with the same verification.
			if err := s.waitChecked(10*time.Second, allBackends...); err != nil {
				t.Fatalf("waiting for every health check to pass over TLS: %v", err)
			}
			cancel()
			wb.wg.Wait()
			wb.check(t)

			if err := callServerDirectly(t, s, insecure.NewCredentials()); err == nil {
				t.Error("the server answered a cleartext call")
			}
			tlsDir := filepath.Join(s.cfg.StateDir, "tls")
			verified := &tls.Config{RootCAs: s.roots, ServerName: "codename-server"}
			err := callServerDirectly(t, s, credentials.NewTLS(verified))
			if mode == "on" && err != nil {
				t.Errorf("a TLS call to the server: %v", err)
			}
			if mode == "mutual" {
				if err == nil {
					t.Error("with mutual TLS, the server answered a caller without a client certificate")
				}
				cert, err := tls.LoadX509KeyPair(filepath.Join(tlsDir, "gateway-client.pem"), filepath.Join(tlsDir, "gateway-client-key.pem"))
				if err != nil {
					t.Fatal(err)
				}
				withCert := verified.Clone()
				withCert.Certificates = []tls.Certificate{cert}
				if err := callServerDirectly(t, s, credentials.NewTLS(withCert)); err != nil {
					t.Errorf("with mutual TLS, a caller with the gateways' client certificate: %v", err)
				}
			}
			wrongName := &tls.Config{RootCAs: s.roots, ServerName: "elsewhere"}
			if err := callServerDirectly(t, s, credentials.NewTLS(wrongName)); err == nil {
				t.Error("the server's certificate passed for another name")
			}
		})
	}
}

// TestCertificateRotationUnderLoad replaces every certificate behind the
// edge (the servers', the gateways', and the client certificates of HAProxy
// and the gateways) while streams of every kind and unary loads run, then
// has HAProxy reload and the Go processes read their files again (SIGHUP):
// no call and no stream may fail, and new connections get the new
// certificates.
func TestCertificateRotationUnderLoad(t *testing.T) {
	// Separate: the gateways' client certificates are among those rotated.
	s := start(t, backendTLS("mutual"), gatewayMode(stack.Separate))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	wb := openWellBehaved(t, ctx, s, 2)
	grpcLoad, restLoad := unaryLoads(t, ctx, s, false, transports[3], "/v1/codename?category=space", 2)
	wb.progress(t, make([]int64, len(wb.streams)))

	tlsDir := filepath.Join(s.cfg.StateDir, "tls")
	before := servedCertificate(t, s)
	for _, name := range []string{"codename-server", "codename-gateway"} {
		if _, err := devtls.IssueServer(tlsDir, name, []string{"localhost", "127.0.0.1", "::1"}, devtls.Fresh()); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"haproxy-client", "gateway-client"} {
		if _, err := devtls.IssueClient(tlsDir, name, devtls.Fresh()); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"server-1", "gateway-1"} {
		if err := s.Process(p).Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	poll.For(t, "the server to present its new certificate", 10*time.Second, func() error {
		if servedCertificate(t, s).Equal(before) {
			return errors.New("it presents the old one")
		}
		return nil
	})
	// Calls and streams go on across the rotation, on old connections and
	// new ones.
	wb.progress(t, wb.counts())
	n := grpcLoad.ok.Load() + restLoad.ok.Load()
	poll.For(t, "calls after the rotation", 10*time.Second, func() error {
		if got := grpcLoad.ok.Load() + restLoad.ok.Load(); got <= n+50 {
			return fmt.Errorf("%d calls, want more than %d", got, n+50)
		}
		return nil
	})
	cancel()
	wb.wg.Wait()
	wb.check(t)
	grpcLoad.check(t, "unary gRPC across the rotation")
	restLoad.check(t, "unary REST across the rotation")
}

// servedCertificate is the certificate the first gRPC server presents to
// a new TLS connection (with the gateways' client certificate, as mutual
// TLS asks).
func servedCertificate(t *testing.T, s *system) *x509.Certificate {
	t.Helper()
	tlsDir := filepath.Join(s.cfg.StateDir, "tls")
	cert, err := devtls.LoadBundle(filepath.Join(tlsDir, "gateway-client-bundle.pem"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", s.cfg.GRPCAddrs[0], &tls.Config{RootCAs: s.roots, ServerName: "codename-server", NextProtos: []string{"h2"}, Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}
