package tlstest

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"
)

// Handshake runs one TLS handshake over loopback TCP (a net.Pipe would
// block on the session tickets that nobody reads) and returns the
// certificate each side saw from the other (nil if none) and the first
// error of either side.
func Handshake(t testing.TB, server, client *tls.Config) (serverSaw, clientSaw *x509.Certificate, err error) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	cc, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := lis.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	defer cc.Close()
	deadline := time.Now().Add(10 * time.Second)
	_ = sc.SetDeadline(deadline)
	_ = cc.SetDeadline(deadline)
	srv := tls.Server(sc, server)
	cli := tls.Client(cc, client)
	serverErr := make(chan error, 1)
	go func() {
		err := srv.Handshake()
		if err != nil {
			sc.Close() // so that the client does not wait for an answer
		}
		serverErr <- err
	}()
	cerr := cli.Handshake()
	if cerr != nil {
		cc.Close()
	}
	if serr := <-serverErr; serr != nil {
		return nil, nil, serr
	}
	if cerr != nil {
		return nil, nil, cerr
	}
	if p := srv.ConnectionState().PeerCertificates; len(p) > 0 {
		serverSaw = p[0]
	}
	return serverSaw, cli.ConnectionState().PeerCertificates[0], nil
}
