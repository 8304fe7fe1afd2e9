package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The TLS listener's policy, from haproxy.cfg: TLS 1.2 and 1.3 only, with
// forward-secret AEAD ciphers, ALPN h2 and http/1.1, and the certificate
// for localhost signed by the development CA. Each case is checked with
// OpenSSL's command-line client and with Go's crypto/tls.

// opensslClient runs `openssl s_client` against the stack's TLS listener
// with args, its input empty, so it returns once the handshake is over.
func opensslClient(t *testing.T, s *system, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", append([]string{"s_client", "-connect", s.cfg.HTTPSAddr}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func needOpenSSL(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is not installed (scripts/setup.sh test installs it)")
	}
}

// tlsDial makes a TLS handshake with the stack's TLS listener.
func tlsDial(s *system, cfg *tls.Config) (tls.ConnectionState, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", s.cfg.HTTPSAddr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState(), nil
}

// TestTLSPolicyVersions: TLS 1.0 and 1.1 are refused by the server (a
// protocol_version alert, not a client that will not try), TLS 1.2 and 1.3
// are accepted.
func TestTLSPolicyVersions(t *testing.T) {
	s := shared(t)
	t.Run("openssl", func(t *testing.T) {
		needOpenSSL(t)
		trust := []string{"-servername", "localhost", "-CAfile", s.caFile, "-verify_return_error", "-brief"}
		for _, tt := range []struct {
			flag, want string
			ok         bool
		}{
			// OpenSSL 3 will not offer TLS 1.0 or 1.1 at its default
			// security level; level 0 makes it try, so that the refusal
			// seen is the server's.
			{"-tls1", "alert protocol version", false},
			{"-tls1_1", "alert protocol version", false},
			{"-tls1_2", "Protocol version: TLSv1.2", true},
			{"-tls1_3", "Protocol version: TLSv1.3", true},
		} {
			out, err := opensslClient(t, s, append([]string{tt.flag, "-cipher", "DEFAULT@SECLEVEL=0"}, trust...)...)
			if (err == nil) != tt.ok || !strings.Contains(out, tt.want) {
				t.Errorf("openssl s_client %s: %v, want success %v and %q in:\n%s", tt.flag, err, tt.ok, tt.want, out)
			}
		}
	})
	t.Run("crypto/tls", func(t *testing.T) {
		for _, tt := range []struct {
			name    string
			version uint16
			ok      bool
		}{
			{"TLS 1.0", tls.VersionTLS10, false},
			{"TLS 1.1", tls.VersionTLS11, false},
			{"TLS 1.2", tls.VersionTLS12, true},
			{"TLS 1.3", tls.VersionTLS13, true},
		} {
			cfg := s.tlsConfig()
			cfg.MinVersion, cfg.MaxVersion = tt.version, tt.version
			st, err := tlsDial(s, cfg)
			switch {
			case tt.ok && (err != nil || st.Version != tt.version):
				t.Errorf("%s: %v (negotiated %s), want accepted", tt.name, err, tls.VersionName(st.Version))
			case !tt.ok && (err == nil || !strings.Contains(err.Error(), "protocol version")):
				t.Errorf("%s: %v, want a protocol version alert from the server", tt.name, err)
			}
		}
	})
}

// TestTLSPolicyCiphers: TLS 1.2 ciphers without forward secrecy or without
// AEAD are refused; the same key exchange with AES-GCM is accepted, so the
// refusals are the cipher policy's.
func TestTLSPolicyCiphers(t *testing.T) {
	s := shared(t)
	t.Run("openssl", func(t *testing.T) {
		needOpenSSL(t)
		for _, tt := range []struct {
			cipher string
			ok     bool
		}{
			{"AES128-SHA", false},                // RSA key exchange, CBC
			{"AES256-GCM-SHA384", false},         // RSA key exchange
			{"ECDHE-ECDSA-AES128-SHA", false},    // CBC
			{"ECDHE-ECDSA-AES256-SHA384", false}, // CBC
			{"ECDHE-ECDSA-AES128-GCM-SHA256", true},
			{"ECDHE-ECDSA-CHACHA20-POLY1305", true},
		} {
			out, err := opensslClient(t, s, "-tls1_2", "-cipher", tt.cipher+"@SECLEVEL=0", "-servername", "localhost", "-CAfile", s.caFile, "-verify_return_error", "-brief")
			if tt.ok && (err != nil || !strings.Contains(out, "Ciphersuite: "+tt.cipher)) {
				t.Errorf("%s: %v, want accepted:\n%s", tt.cipher, err, out)
			}
			if !tt.ok && (err == nil || !strings.Contains(out, "alert handshake failure")) {
				t.Errorf("%s: %v, want a handshake failure alert:\n%s", tt.cipher, err, out)
			}
		}
	})
	t.Run("crypto/tls", func(t *testing.T) {
		for _, tt := range []struct {
			suite uint16
			ok    bool
		}{
			{tls.TLS_RSA_WITH_AES_128_CBC_SHA, false},
			{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, false},
			{tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, false},
			{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, true},
		} {
			cfg := s.tlsConfig()
			cfg.MaxVersion = tls.VersionTLS12
			cfg.CipherSuites = []uint16{tt.suite}
			st, err := tlsDial(s, cfg)
			name := tls.CipherSuiteName(tt.suite)
			if tt.ok && (err != nil || st.CipherSuite != tt.suite) {
				t.Errorf("%s: %v, want accepted", name, err)
			}
			if !tt.ok && (err == nil || !strings.Contains(err.Error(), "handshake failure")) {
				t.Errorf("%s: %v, want a handshake failure alert", name, err)
			}
		}
	})
}

// TestTLSPolicyALPN: the listener offers h2 and http/1.1, in its own order
// of preference: h2 whenever the client offers it, whatever the client's
// order; a client offering neither still connects, with no protocol
// negotiated (and then speaks HTTP/1.1).
func TestTLSPolicyALPN(t *testing.T) {
	s := shared(t)
	cases := []struct {
		offer, want string
	}{
		{"h2,http/1.1", "h2"},
		{"http/1.1,h2", "h2"},
		{"h2", "h2"},
		{"http/1.1", "http/1.1"},
		{"h3", ""},
	}
	t.Run("openssl", func(t *testing.T) {
		needOpenSSL(t)
		for _, tt := range cases {
			out, err := opensslClient(t, s, "-alpn", tt.offer, "-servername", "localhost", "-CAfile", s.caFile, "-verify_return_error")
			want := "ALPN protocol: " + tt.want
			if tt.want == "" {
				want = "No ALPN negotiated"
			}
			if err != nil || !strings.Contains(out, want+"\n") {
				t.Errorf("-alpn %s: %v, want %q in:\n%s", tt.offer, err, want, out)
			}
		}
	})
	t.Run("crypto/tls", func(t *testing.T) {
		for _, tt := range cases {
			st, err := tlsDial(s, s.tlsConfig(strings.Split(tt.offer, ",")...))
			if err != nil || st.NegotiatedProtocol != tt.want {
				t.Errorf("offering %s: %v, negotiated %q, want %q", tt.offer, err, st.NegotiatedProtocol, tt.want)
			}
		}
	})
}

// TestTLSPolicyCertificateChecks: the certificate is for localhost and its
// IP addresses, signed by the development CA; a client expecting another
// name, or not trusting that CA, refuses it.
func TestTLSPolicyCertificateChecks(t *testing.T) {
	s := shared(t)
	t.Run("openssl", func(t *testing.T) {
		needOpenSSL(t)
		for _, tt := range []struct {
			name string
			args []string
			want string
		}{
			{"right name, trusted CA", []string{"-servername", "localhost", "-verify_hostname", "localhost", "-CAfile", s.caFile}, ""},
			{"wrong name", []string{"-servername", "wrong.example", "-verify_hostname", "wrong.example", "-CAfile", s.caFile}, "hostname mismatch"},
			// The system's trust store, which does not hold the dev CA.
			{"untrusted CA", []string{"-servername", "localhost", "-verify_hostname", "localhost"}, "self-signed certificate in certificate chain"},
		} {
			out, err := opensslClient(t, s, append(tt.args, "-verify_return_error", "-brief")...)
			if tt.want == "" {
				if err != nil || !strings.Contains(out, "Verification: OK") {
					t.Errorf("%s: %v, want verified:\n%s", tt.name, err, out)
				}
				continue
			}
			if err == nil || !strings.Contains(out, tt.want) || !strings.Contains(out, "certificate verify failed") {
				t.Errorf("%s: %v, want the certificate refused (%s):\n%s", tt.name, err, tt.want, out)
			}
		}
	})
	t.Run("crypto/tls", func(t *testing.T) {
		ok := s.tlsConfig()
		if _, err := tlsDial(s, ok); err != nil {
			t.Errorf("localhost with the dev CA: %v", err)
		}
		byIP := s.tlsConfig()
		byIP.ServerName = "127.0.0.1"
		if _, err := tlsDial(s, byIP); err != nil {
			t.Errorf("127.0.0.1 with the dev CA: %v", err)
		}

		wrong := s.tlsConfig()
		wrong.ServerName = "wrong.example"
		_, err := tlsDial(s, wrong)
		var hostErr x509.HostnameError
		if !errors.As(err, &hostErr) {
			t.Errorf("wrong.example: %v, want a hostname error", err)
		}

		untrusted := s.tlsConfig()
		untrusted.RootCAs = x509.NewCertPool() // trusts nothing
		_, err = tlsDial(s, untrusted)
		var authErr x509.UnknownAuthorityError
		if !errors.As(err, &authErr) {
			t.Errorf("without the dev CA: %v, want an unknown authority error", err)
		}
	})
}
