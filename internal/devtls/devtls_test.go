package devtls

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

func TestEnsureCreatesTrustedServerCertificate(t *testing.T) {
	dir := t.TempDir()
	f, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA file holds no certificate")
	}
	pair, err := tls.LoadX509KeyPair(f.Server, f.Server)
	if err != nil {
		t.Fatalf("server file is not a certificate and key: %v", err)
	}
	for _, h := range Hosts {
		if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: roots}); err != nil {
			t.Errorf("certificate for %s: %v", h, err)
		}
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: roots}); err == nil {
		t.Error("certificate verifies for example.com, want it limited to the local hosts")
	}
	if info, err := os.Stat(f.CAKey); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode = %v (%v), want 0600", info.Mode().Perm(), err)
	}
}

func TestEnsureKeepsCAAndRenewsMissingServerCertificate(t *testing.T) {
	dir := t.TempDir()
	first, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	caBefore, _ := os.ReadFile(first.CA)
	serverBefore, _ := os.ReadFile(first.Server)

	if _, err := Ensure(dir); err != nil {
		t.Fatal(err)
	}
	if serverAgain, _ := os.ReadFile(first.Server); string(serverAgain) != string(serverBefore) {
		t.Error("a valid server certificate was replaced")
	}

	if err := os.Remove(first.Server); err != nil {
		t.Fatal(err)
	}
	if _, err := Ensure(dir); err != nil {
		t.Fatal(err)
	}
	if caAfter, _ := os.ReadFile(first.CA); string(caAfter) != string(caBefore) {
		t.Error("the CA was replaced, want it kept so that clients keep trusting it")
	}
	if _, err := tls.LoadX509KeyPair(first.Server, first.Server); err != nil {
		t.Errorf("server certificate not recreated: %v", err)
	}
}
