package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// tlsHint passes handshakes through and remembers why the last one
// failed: gRPC reports a failed handshake as UNAVAILABLE with the x509
// text inside, which tells a user what broke but not what to do.
type tlsHint struct {
	credentials.TransportCredentials
	addr, caFile string
	plaintext    bool

	mu     sync.Mutex
	failed error
}

func (h *tlsHint) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := h.TransportCredentials.ClientHandshake(ctx, authority, raw)
	if err != nil {
		h.mu.Lock()
		h.failed = err
		h.mu.Unlock()
	}
	return conn, info, err
}

// Clone returns h itself, so that the handshakes of every connection
// report to the one hint that run asks.
func (h *tlsHint) Clone() credentials.TransportCredentials { return h }

// explain turns a call's error caused by a failed TLS handshake into one
// line saying what to do; any other error it returns as it is.
func (h *tlsHint) explain(err error) error {
	if err == nil {
		return nil
	}
	h.mu.Lock()
	failed := h.failed
	h.mu.Unlock()
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		record   tls.RecordHeaderError
	)
	switch {
	case h.plaintext && status.Code(err) == codes.Unavailable && strings.Contains(err.Error(), "server preface"):
		// A TLS port closes a connection that opens in cleartext.
		return fmt.Errorf("%s closed the connection before HTTP/2 began: if it is a TLS port, leave out -plaintext (and give its CA with -ca, the run command's is .state/tls/ca.pem)", h.addr)
	case failed == nil:
		return err
	case errors.As(failed, &unknown) && h.caFile == "":
		return fmt.Errorf("%s has a certificate from a CA this machine does not trust: give its CA with -ca (the run command's is -ca .state/tls/ca.pem), or use -plaintext -addr localhost:8080 for the cleartext port", h.addr)
	case errors.As(failed, &unknown):
		return fmt.Errorf("%s has a certificate that the CA in -ca %s did not sign: give the CA of that server (the run command's is .state/tls/ca.pem), or use -plaintext -addr localhost:8080 for the cleartext port", h.addr, h.caFile)
	case errors.As(failed, &hostname):
		return fmt.Errorf("%s has a certificate for %s, not for this name: call it by one of those names", h.addr, hostnames(hostname.Certificate))
	case errors.As(failed, &record):
		return fmt.Errorf("%s does not speak TLS: use -plaintext for a cleartext port", h.addr)
	}
	return err
}

// hostnames lists the names a certificate is valid for.
func hostnames(c *x509.Certificate) string {
	names := append([]string{}, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return c.Subject.CommonName
	}
	return fmt.Sprint(names)
}
