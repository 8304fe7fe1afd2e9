package tlstest

import (
	"crypto/tls"
	"testing"

	"github.com/codename-gateway/codename-gateway/internal/tlsreload"
)

// ServerConfig issues a certificate for name and returns the server config
// the binaries build from such files (through tlsreload); with mutual, it
// accepts only clients with a certificate of ca.
func (ca *CA) ServerConfig(t testing.TB, name string, mutual bool) *tls.Config {
	t.Helper()
	pair := ca.Issue(t, name, name)
	files := tlsreload.Files{Cert: pair.CertFile, Key: pair.KeyFile}
	if mutual {
		files.CA = ca.CertFile
	}
	return load(t, files).ServerConfig()
}

// ClientConfig returns the config of a client that trusts ca, verifies the
// server as serverName and, unless cert is nil, presents cert.
func (ca *CA) ClientConfig(t testing.TB, serverName string, cert *Pair) *tls.Config {
	t.Helper()
	files := tlsreload.Files{CA: ca.CertFile}
	if cert != nil {
		files.Cert, files.Key = cert.CertFile, cert.KeyFile
	}
	return load(t, files).ClientConfig(serverName)
}

func load(t testing.TB, files tlsreload.Files) *tlsreload.Source {
	t.Helper()
	src, err := tlsreload.Load(files, nil)
	if err != nil {
		t.Fatalf("load %+v: %v", files, err)
	}
	return src
}
