package devtls

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// roots returns a pool holding the CA in dir, as a client given -ca would.
func roots(t *testing.T, dir string) (*x509.CertPool, *x509.Certificate) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("ca.pem holds no PEM block")
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, ca
}

// loadLeaf checks that the cert and key files match and that the bundle
// holds the same certificate, then returns the parsed chain.
func loadLeaf(t *testing.T, l Leaf) []*x509.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(l.Cert, l.Key)
	if err != nil {
		t.Fatalf("cert and key files: %v", err)
	}
	bundlePEM, err := os.ReadFile(l.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := tls.X509KeyPair(bundlePEM, bundlePEM)
	if err != nil {
		t.Fatalf("bundle is not a certificate and key: %v", err)
	}
	if !bundle.Leaf.Equal(pair.Leaf) {
		t.Error("bundle holds another certificate than the cert file")
	}
	var chain []*x509.Certificate
	for _, der := range pair.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	for _, path := range []string{l.Key, l.Bundle} {
		if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v (%v), want 0600", filepath.Base(path), info.Mode().Perm(), err)
		}
	}
	return chain
}

func TestIssueServerCoversHostsAndVerifiesForServerAuth(t *testing.T) {
	dir := t.TempDir()
	l, err := IssueServer(dir, "server-1", []string{"server-1.test", "10.0.0.2", "fd00::2", "10.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "server-1.pem"); l.Cert != want {
		t.Errorf("Cert = %s, want %s", l.Cert, want)
	}
	chain := loadLeaf(t, l)
	pool, ca := roots(t, dir)
	if len(chain) != 2 || !chain[1].Equal(ca) {
		t.Fatalf("chain has %d certificates, want the leaf then the CA", len(chain))
	}
	c := chain[0]
	if got, want := c.DNSNames, []string{"server-1", "server-1.test"}; !slices.Equal(got, want) {
		t.Errorf("DNSNames = %v, want %v", got, want)
	}
	if got, want := c.IPAddresses, []net.IP{net.ParseIP("10.0.0.2"), net.ParseIP("fd00::2")}; !slices.EqualFunc(got, want, net.IP.Equal) {
		t.Errorf("IPAddresses = %v, want %v", got, want)
	}
	for _, h := range []string{"server-1", "server-1.test", "10.0.0.2", "fd00::2"} {
		opts := x509.VerifyOptions{DNSName: h, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		if _, err := c.Verify(opts); err != nil {
			t.Errorf("verify for %s: %v", h, err)
		}
	}
	if _, err := c.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: pool}); err == nil {
		t.Error("certificate verifies for localhost, want it limited to the hosts asked for")
	}
	clientUse := x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := c.Verify(clientUse); err == nil {
		t.Error("server certificate verifies for ClientAuth, want ServerAuth only")
	}
}

func TestIssueClientVerifiesForClientAuth(t *testing.T) {
	dir := t.TempDir()
	l, err := IssueClient(dir, "haproxy")
	if err != nil {
		t.Fatal(err)
	}
	chain := loadLeaf(t, l)
	pool, _ := roots(t, dir)
	c := chain[0]
	if c.Subject.CommonName != "haproxy" {
		t.Errorf("CommonName = %q, want haproxy", c.Subject.CommonName)
	}
	clientUse := x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := c.Verify(clientUse); err != nil {
		t.Errorf("verify for ClientAuth: %v", err)
	}
	serverUse := x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if _, err := c.Verify(serverUse); err == nil {
		t.Error("client certificate verifies for ServerAuth, want ClientAuth only")
	}
}

// TestIssueKeepsOrReplaces runs each case on a directory holding server-1's
// server certificate and gateway's client certificate, issued a moment ago,
// changes something, issues again and checks whether the files were
// replaced; a further call must then keep them.
func TestIssueKeepsOrReplaces(t *testing.T) {
	hosts := []string{"server-1.test", "10.0.0.2"}
	server := func(hosts []string, opts ...Option) func(string) (Leaf, error) {
		return func(dir string) (Leaf, error) { return IssueServer(dir, "server-1", hosts, opts...) }
	}
	client := func(opts ...Option) func(string) (Leaf, error) {
		return func(dir string) (Leaf, error) { return IssueClient(dir, "gateway", opts...) }
	}
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		again   func(dir string) (Leaf, error)
		want    bool // replaced
	}{
		{name: "same hosts", again: server(hosts), want: false},
		{name: "same hosts in another order, cased and repeated", again: server([]string{"10.0.0.2", "SERVER-1.test", "server-1", "10.0.0.2"}), want: false},
		{name: "client again", again: client(), want: false},
		{name: "address added", again: server(append(slices.Clone(hosts), "10.0.0.3")), want: true},
		{name: "address removed", again: server(hosts[:1]), want: true},
		{name: "name changed", again: server([]string{"server-1.example", "10.0.0.2"}), want: true},
		{
			name: "expires within 30 days",
			prepare: func(t *testing.T, dir string) {
				s, err := serverSpec("server-1", hosts)
				if err != nil {
					t.Fatal(err)
				}
				// Issued as if a year less ten days ago, so ten days remain.
				if _, err := issue(dir, s, time.Now().Add(-serverLifetime+10*24*time.Hour), []Option{Fresh()}); err != nil {
					t.Fatal(err)
				}
			},
			again: server(hosts),
			want:  true,
		},
		{
			name: "CA replaced",
			prepare: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "ca.pem")); err != nil {
					t.Fatal(err)
				}
			},
			again: server(hosts),
			want:  true,
		},
		{
			name: "key missing",
			prepare: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "server-1-key.pem")); err != nil {
					t.Fatal(err)
				}
			},
			again: server(hosts),
			want:  true,
		},
		{
			name: "bundle of another certificate",
			prepare: func(t *testing.T, dir string) {
				other, err := IssueServer(dir, "server-2", hosts)
				if err != nil {
					t.Fatal(err)
				}
				data, err := os.ReadFile(other.Bundle)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "server-1-bundle.pem"), data, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			again: server(hosts),
			want:  true,
		},
		{name: "fresh server", again: server(hosts, Fresh()), want: true},
		{name: "fresh client", again: client(Fresh()), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := server(hosts)(dir); err != nil {
				t.Fatal(err)
			}
			if _, err := client()(dir); err != nil {
				t.Fatal(err)
			}
			if tt.prepare != nil {
				tt.prepare(t, dir)
			}
			// The paths do not depend on the files, so a call in an empty
			// directory names the files this case is about.
			probe, err := tt.again(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			cert := filepath.Join(dir, filepath.Base(probe.Cert))
			before, _ := os.ReadFile(cert) // missing counts as different

			l, err := tt.again(dir)
			if err != nil {
				t.Fatal(err)
			}
			if l.Cert != cert {
				t.Fatalf("Cert = %s, want %s", l.Cert, cert)
			}
			after := readAll(t, l)
			if got := !strings.HasPrefix(after, string(before)) || len(before) == 0; got != tt.want {
				t.Errorf("replaced = %v, want %v", got, tt.want)
			}
			pool, _ := roots(t, dir)
			month := x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, CurrentTime: time.Now().Add(renewBefore)}
			if _, err := loadLeaf(t, l)[0].Verify(month); err != nil {
				t.Errorf("the certificate does not verify against the CA for 30 days more: %v", err)
			}

			if _, err := tt.again(dir); err != nil {
				t.Fatal(err)
			}
			if tt.name == "fresh server" || tt.name == "fresh client" {
				return // Fresh replaces every time, as the next test checks
			}
			if readAll(t, l) != after {
				t.Error("the files were replaced again, want the new ones kept")
			}
		})
	}
}

// TestFreshReplacesEveryTime is what a rotation test relies on: each call
// with Fresh gives a new key, so traffic after it is provably on new files.
func TestFreshReplacesEveryTime(t *testing.T) {
	dir := t.TempDir()
	seen := map[string]bool{}
	for range 3 {
		l, err := IssueClient(dir, "haproxy", Fresh())
		if err != nil {
			t.Fatal(err)
		}
		key, err := os.ReadFile(l.Key)
		if err != nil {
			t.Fatal(err)
		}
		if seen[string(key)] {
			t.Fatal("Fresh gave a key already used")
		}
		seen[string(key)] = true
	}
}

// TestRotationNeverTearsTheBundle reads the bundle with LoadBundle while
// rotations rename new files in: it must always load. (With
// tls.LoadX509KeyPair(b, b), which opens the file twice, this test failed
// with a key that did not match.) Between rotations, the pair matches too.
func TestRotationNeverTearsTheBundle(t *testing.T) {
	dir := t.TempDir()
	l, err := IssueServer(dir, "server-1", []string{"10.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	var loads atomic.Int64
	wg.Go(func() {
		for !done.Load() {
			if _, err := LoadBundle(l.Bundle); err != nil {
				t.Errorf("bundle during a rotation: %v", err)
				return
			}
			loads.Add(1)
		}
	})
	for range 20 {
		if _, err := IssueServer(dir, "server-1", []string{"10.0.0.2"}, Fresh()); err != nil {
			t.Fatal(err)
		}
		// Between rotations, as a watcher sees it once the cert file has
		// changed, the pair matches.
		if _, err := tls.LoadX509KeyPair(l.Cert, l.Key); err != nil {
			t.Errorf("cert and key after a rotation: %v", err)
		}
	}
	done.Store(true)
	wg.Wait()
	if loads.Load() == 0 {
		t.Error("the reader never loaded the bundle")
	}
}

func TestIssueRefusesNamesThatClash(t *testing.T) {
	for _, name := range []string{"", "ca", "server", "ca-key", "server-1-key", "server-1-bundle", "../x", "a/b", ".hidden", "-x"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := IssueServer(dir, name, nil); err == nil {
				t.Errorf("IssueServer(%q) succeeded, want an error", name)
			}
			if _, err := IssueClient(dir, name); err == nil {
				t.Errorf("IssueClient(%q) succeeded, want an error", name)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("refused name left %d files behind", len(entries))
			}
		})
	}
}

// TestIssueAndEnsureShareTheCA makes sure a CA made by IssueServer is the
// one Ensure keeps, so that the edge and the replicas are trusted through
// one ca.pem, whichever is called first.
func TestIssueAndEnsureShareTheCA(t *testing.T) {
	dir := t.TempDir()
	l, err := IssueServer(dir, "server-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	pool, _ := roots(t, dir)
	if _, err := loadLeaf(t, l)[0].Verify(x509.VerifyOptions{DNSName: "server-1", Roots: pool}); err != nil {
		t.Errorf("server-1 after Ensure: %v", err)
	}
	edge, err := tls.LoadX509KeyPair(f.Server, f.Server)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := edge.Leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: pool}); err != nil {
		t.Errorf("edge certificate: %v", err)
	}
}

func readAll(t *testing.T, l Leaf) string {
	t.Helper()
	var s string
	for _, p := range []string{l.Cert, l.Key, l.Bundle} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		s += string(b)
	}
	return s
}
