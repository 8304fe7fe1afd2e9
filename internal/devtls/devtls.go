// Package devtls makes the local certificate authority and the localhost
// certificate that the development stack and the tests serve TLS with, so
// that nobody needs openssl and every client can trust one CA file.
package devtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// Files are the paths of the PEM files Ensure keeps.
type Files struct {
	// CA is the CA certificate: give it to curl --cacert, grpcurl -cacert,
	// the client's -ca flag, or a browser's trust store.
	CA string
	// CAKey is the CA's private key, kept to sign new server certificates.
	CAKey string
	// Server holds the server certificate, the CA certificate and the
	// server's private key, in the order HAProxy's `crt` wants them.
	Server string
}

// Hosts are the names and addresses the server certificate is valid for.
var Hosts = []string{"localhost", "127.0.0.1", "::1"}

const (
	caLifetime     = 10 * 365 * 24 * time.Hour
	serverLifetime = 365 * 24 * time.Hour
	// renewBefore makes Ensure replace a certificate a month before it
	// expires rather than on the day it breaks.
	renewBefore = 30 * 24 * time.Hour
)

// Ensure returns the files in dir, creating whatever is missing, expired or
// about to expire. An existing, valid CA is kept, so that clients which
// already trust it keep working when the server certificate is renewed.
func Ensure(dir string) (Files, error) {
	f := Files{
		CA:     filepath.Join(dir, "ca.pem"),
		CAKey:  filepath.Join(dir, "ca-key.pem"),
		Server: filepath.Join(dir, "server.pem"),
	}
	now := time.Now()
	ca, caKey, err := ensureCA(dir, now)
	if err != nil {
		return Files{}, fmt.Errorf("create CA: %w", err)
	}
	if serverValid(f, ca, now) {
		return f, nil
	}
	if err := newServer(f, ca, caKey, now); err != nil {
		return Files{}, fmt.Errorf("create server certificate: %w", err)
	}
	return f, nil
}

func loadCA(f Files) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	pair, err := tls.LoadX509KeyPair(f.CA, f.CAKey)
	if err != nil {
		return nil, nil, err
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New("CA key is not ECDSA")
	}
	return pair.Leaf, key, nil
}

func newCA(f Files, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "codename-gateway development CA", Organization: []string{"codename-gateway"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := keyBlock(key)
	if err != nil {
		return nil, nil, err
	}
	if err := writeAtomic(f.CAKey, keyPEM, 0o600); err != nil {
		return nil, nil, err
	}
	if err := writeAtomic(f.CA, certBlock(der), 0o644); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func newServer(f Files, ca *x509.Certificate, caKey *ecdsa.PrivateKey, now time.Time) error {
	s, err := serverSpec("localhost", Hosts)
	if err != nil {
		return err
	}
	chain, keyPEM, err := sign(s, ca, caKey, now)
	if err != nil {
		return err
	}
	return writeAtomic(f.Server, append(chain, keyPEM...), 0o600)
}

// serverValid reports whether the server file holds a certificate signed by
// ca, for every host in Hosts, that is not about to expire.
func serverValid(f Files, ca *x509.Certificate, now time.Time) bool {
	pair, err := tls.LoadX509KeyPair(f.Server, f.Server)
	if err != nil {
		return false
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, h := range Hosts {
		_, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: roots, CurrentTime: now.Add(renewBefore)})
		if err != nil {
			return false
		}
	}
	return true
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func certBlock(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func keyBlock(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// writeAtomic replaces path in one step, so that HAProxy or a client never
// reads half a file.
func writeAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
