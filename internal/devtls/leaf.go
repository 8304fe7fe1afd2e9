package devtls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Leaf is the set of files one issued certificate lives in.
//
// A rotation replaces all three, each by a rename, in the order Bundle, Key,
// Cert (see issue). Bundle is the one form that is always consistent on its
// own: a Go process should load it with LoadBundle, and HAProxy takes it as
// its `crt`. A reader of the two-file form
// should reload when Cert changes, since Cert is renamed last, and keep its
// old pair if tls.LoadX509KeyPair reports a key that does not match (it raced
// a further rotation).
type Leaf struct {
	// Cert is the certificate chain: the leaf, then the CA.
	Cert string
	// Key is the leaf's private key, mode 0600.
	Key string
	// Bundle holds the leaf, the CA and the key in one file, mode 0600.
	Bundle string
}

// LoadBundle reads a bundle file in one read and returns its certificate
// and key. It exists because tls.LoadX509KeyPair(b, b) opens the file twice,
// once for the certificate and once for the key, and so can pair the old
// certificate with the new key when a rotation renames a new bundle in
// between.
func LoadBundle(path string) (tls.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(data, data)
}

// Option changes how IssueServer and IssueClient issue.
type Option func(*options)

type options struct {
	fresh bool
}

// Fresh makes a new certificate and key even when the existing ones are still
// valid, which is what rotating a certificate under load means.
func Fresh() Option {
	return func(o *options) { o.fresh = true }
}

// IssueServer returns a server certificate for name, signed by the CA in dir,
// valid for every DNS name and IP address in hosts and for name itself as a
// DNS name. It creates the CA if dir has none (as Ensure would, without
// touching Ensure's server.pem). The files are dir/<name>.pem,
// dir/<name>-key.pem and dir/<name>-bundle.pem; they are kept while they
// stay valid for 30 days more, are signed by the current CA and cover
// exactly hosts, and replaced otherwise.
func IssueServer(dir, name string, hosts []string, opts ...Option) (Leaf, error) {
	s, err := serverSpec(name, hosts)
	if err != nil {
		return Leaf{}, err
	}
	return issue(dir, s, time.Now(), opts)
}

// IssueClient returns a client certificate with CommonName name, signed by
// the CA in dir, for mutual TLS: a server that trusts the CA and asks for
// ClientAuth accepts it. Files, reuse and creation of the CA are as for
// IssueServer.
func IssueClient(dir, name string, opts ...Option) (Leaf, error) {
	if err := checkName(name); err != nil {
		return Leaf{}, err
	}
	return issue(dir, spec{name: name, usage: x509.ExtKeyUsageClientAuth}, time.Now(), opts)
}

// spec is what a leaf must say: the same spec is both what issue signs and
// what an existing file is checked against, so the two cannot drift apart.
type spec struct {
	name  string
	usage x509.ExtKeyUsage
	dns   []string // sorted, without duplicates
	ips   []net.IP // sorted by String, without duplicates
}

func serverSpec(name string, hosts []string) (spec, error) {
	if err := checkName(name); err != nil {
		return spec{}, err
	}
	s := spec{name: name, usage: x509.ExtKeyUsageServerAuth, dns: []string{name}}
	for _, h := range hosts {
		switch ip := net.ParseIP(h); {
		case h == "":
			return spec{}, fmt.Errorf("certificate %s: empty host", name)
		case ip != nil:
			s.ips = append(s.ips, ip)
		default:
			s.dns = append(s.dns, strings.ToLower(h))
		}
	}
	slices.Sort(s.dns)
	s.dns = slices.Compact(s.dns)
	s.ips = sortIPs(s.ips)
	return s, nil
}

// sortIPs orders and dedupes by the textual form, so that "::ffff:1.2.3.4"
// and "1.2.3.4", which net.IP treats as the same address, count once.
func sortIPs(ips []net.IP) []net.IP {
	slices.SortFunc(ips, func(a, b net.IP) int { return strings.Compare(a.String(), b.String()) })
	return slices.CompactFunc(ips, func(a, b net.IP) bool { return a.Equal(b) })
}

// checkName refuses names that would escape dir or land on another file's
// path: "ca" would overwrite the CA, "server" Ensure's edge certificate, and
// "x-key" or "x-bundle" the files of the certificate named "x".
func checkName(name string) error {
	if name == "" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "-") {
		return fmt.Errorf("certificate name %q: want letters, digits, '.', '-' or '_', not first '.' or '-'", name)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_'
		if !ok {
			return fmt.Errorf("certificate name %q: want letters, digits, '.', '-' or '_'", name)
		}
	}
	if name == "ca" || name == "server" || strings.HasSuffix(name, "-key") || strings.HasSuffix(name, "-bundle") {
		return fmt.Errorf("certificate name %q would clash with another file in the directory", name)
	}
	return nil
}

// mu serialises issuing within one process, so that replicas started
// together by one test do not each make a CA and overwrite one another's.
// Separate processes sharing a dir should let one of them (or Ensure) make
// the CA first.
var mu sync.Mutex

func issue(dir string, s spec, now time.Time, opts []Option) (Leaf, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	l := Leaf{
		Cert:   filepath.Join(dir, s.name+".pem"),
		Key:    filepath.Join(dir, s.name+"-key.pem"),
		Bundle: filepath.Join(dir, s.name+"-bundle.pem"),
	}
	mu.Lock()
	defer mu.Unlock()
	ca, caKey, err := ensureCA(dir, now)
	if err != nil {
		return Leaf{}, fmt.Errorf("create CA: %w", err)
	}
	if !o.fresh && leafValid(l, s, ca, now) {
		return l, nil
	}
	if err := newLeaf(l, s, ca, caKey, now); err != nil {
		return Leaf{}, fmt.Errorf("certificate %s: %w", s.name, err)
	}
	return l, nil
}

// ensureCA is the CA half of Ensure: load the CA, or make a new one when it
// is missing or about to expire.
func ensureCA(dir string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	f := Files{CA: filepath.Join(dir, "ca.pem"), CAKey: filepath.Join(dir, "ca-key.pem")}
	ca, caKey, err := loadCA(f)
	if err == nil && !now.Add(renewBefore).After(ca.NotAfter) {
		return ca, caKey, nil
	}
	return newCA(f, now)
}

func newLeaf(l Leaf, s spec, ca *x509.Certificate, caKey *ecdsa.PrivateKey, now time.Time) error {
	chain, keyPEM, err := sign(s, ca, caKey, now)
	if err != nil {
		return err
	}
	bundle := append(slices.Clip(chain), keyPEM...)
	// Each file is renamed into place whole; the order makes the cert file
	// the last to change, so that a reader that reloads when it sees the
	// cert change finds the matching key already there. No order can make
	// two files change at once, so a reader that reads the key and then the
	// cert across a rotation can still get a mismatched pair;
	// tls.LoadX509KeyPair refuses that, and the bundle, one file, never has
	// it.
	if err := writeAtomic(l.Bundle, bundle, 0o600); err != nil {
		return err
	}
	if err := writeAtomic(l.Key, keyPEM, 0o600); err != nil {
		return err
	}
	return writeAtomic(l.Cert, chain, 0o644)
}

// sign makes a new key and a certificate that says what s says, signed by
// ca, and returns them as PEM: the chain (the certificate, then ca) and the
// key. Ensure's server certificate and every Leaf are made here.
func sign(s spec, ca *x509.Certificate, caKey *ecdsa.PrivateKey, now time.Time) (chain, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: s.name, Organization: []string{"codename-gateway"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(serverLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{s.usage},
		DNSNames:     s.dns,
		IPAddresses:  s.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	if keyPEM, err = keyBlock(key); err != nil {
		return nil, nil, err
	}
	return append(certBlock(der), certBlock(ca.Raw)...), keyPEM, nil
}

// leafValid reports whether all three files hold one certificate and key
// that say exactly what s says, are signed by ca, and stay valid for
// renewBefore more. Anything less and issue makes a new set, so that a
// half-written or hand-edited set repairs itself.
func leafValid(l Leaf, s spec, ca *x509.Certificate, now time.Time) bool {
	pair, err := tls.LoadX509KeyPair(l.Cert, l.Key)
	if err != nil {
		return false
	}
	bundle, err := LoadBundle(l.Bundle)
	if err != nil || !bytes.Equal(bundle.Leaf.Raw, pair.Leaf.Raw) {
		return false
	}
	c := pair.Leaf
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	opts := x509.VerifyOptions{Roots: roots, CurrentTime: now.Add(renewBefore), KeyUsages: []x509.ExtKeyUsage{s.usage}}
	if _, err := c.Verify(opts); err != nil {
		return false
	}
	got := spec{name: c.Subject.CommonName, dns: slices.Sorted(slices.Values(c.DNSNames)), ips: sortIPs(slices.Clone(c.IPAddresses))}
	return got.name == s.name &&
		slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{s.usage}) &&
		slices.Equal(got.dns, s.dns) &&
		slices.EqualFunc(got.ips, s.ips, net.IP.Equal)
}
