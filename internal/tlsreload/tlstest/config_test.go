package tlstest_test

import (
	"testing"

	"github.com/codename-gateway/codename-gateway/internal/tlsreload/tlstest"
)

// TestConfigs checks that a client config of the CA with a certificate
// completes a mutual handshake with a server config of it, and that one
// without a certificate, or expecting another name, does not.
func TestConfigs(t *testing.T) {
	ca := tlstest.NewCA(t, "test")
	server := ca.ServerConfig(t, "codename-server", true)
	client := ca.Issue(t, "client", "codename-gateway")

	serverSaw, clientSaw, err := tlstest.Handshake(t, server, ca.ClientConfig(t, "codename-server", &client))
	if err != nil {
		t.Fatalf("handshake with a client certificate: %v", err)
	}
	if clientSaw.Subject.CommonName != "codename-server" {
		t.Errorf("client saw %v, want codename-server", clientSaw.Subject)
	}
	if serverSaw == nil || !serverSaw.Equal(client.Cert) {
		t.Errorf("server saw client certificate %v, want the one issued", serverSaw)
	}
	if _, _, err := tlstest.Handshake(t, server, ca.ClientConfig(t, "codename-server", nil)); err == nil {
		t.Error("handshake without a client certificate succeeded, want it refused")
	}
	if _, _, err := tlstest.Handshake(t, server, ca.ClientConfig(t, "elsewhere", &client)); err == nil {
		t.Error("handshake expecting another server name succeeded, want it refused")
	}
}
