package tlsreload_test

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/poll"
	"github.com/codename-gateway/codename-gateway/internal/runtest"
	"github.com/codename-gateway/codename-gateway/internal/tlsreload"
	"github.com/codename-gateway/codename-gateway/internal/tlsreload/tlstest"
)

func mustLoad(t *testing.T, f tlsreload.Files) *tlsreload.Source {
	t.Helper()
	s, err := tlsreload.Load(f, nil)
	if err != nil {
		t.Fatalf("Load(%+v): %v", f, err)
	}
	return s
}

// setup makes a CA, a server certificate for "codename-server" and a
// client certificate, and a server and client Source over them.
func setup(t *testing.T) (ca *tlstest.CA, srv, cli *tlsreload.Source, srvPair tlstest.Pair) {
	ca = tlstest.NewCA(t, "test")
	srvPair = ca.Issue(t, "server", "codename-server")
	cliPair := ca.Issue(t, "client", "codename-gateway")
	srv = mustLoad(t, tlsreload.Files{Cert: srvPair.CertFile, Key: srvPair.KeyFile, CA: ca.CertFile})
	cli = mustLoad(t, tlsreload.Files{Cert: cliPair.CertFile, Key: cliPair.KeyFile, CA: ca.CertFile})
	return ca, srv, cli, srvPair
}

func sameCert(a, b *x509.Certificate) bool { return a != nil && b != nil && a.Equal(b) }

func TestMutualTLS(t *testing.T) {
	_, srv, cli, pair := setup(t)
	serverSaw, clientSaw, err := tlstest.Handshake(t, srv.ServerConfig(), cli.ClientConfig("codename-server"))
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if !sameCert(clientSaw, pair.Cert) {
		t.Errorf("client saw %v, want the server certificate", clientSaw.Subject)
	}
	if serverSaw == nil || serverSaw.Subject.CommonName != "codename-gateway" {
		t.Errorf("server saw client certificate %v, want codename-gateway", serverSaw)
	}
}

func TestClientRefuses(t *testing.T) {
	ca, srv, _, _ := setup(t)
	other := tlstest.NewCA(t, "other")
	for _, tc := range []struct {
		name       string
		serverName string
		ca         string
	}{
		{"wrong name", "elsewhere", ca.CertFile},
		{"unknown CA", "codename-server", other.CertFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli := mustLoad(t, tlsreload.Files{CA: tc.ca})
			if _, _, err := tlstest.Handshake(t, srv.ServerConfig(), cli.ClientConfig(tc.serverName)); err == nil {
				t.Fatal("handshake succeeded, want an error")
			}
		})
	}
}

func TestServerRefusesClient(t *testing.T) {
	ca, srv, _, _ := setup(t)
	other := tlstest.NewCA(t, "other")
	stranger := other.Issue(t, "stranger", "stranger")
	for _, tc := range []struct {
		name  string
		files tlsreload.Files
	}{
		{"no certificate", tlsreload.Files{CA: ca.CertFile}},
		{"certificate of another CA", tlsreload.Files{Cert: stranger.CertFile, Key: stranger.KeyFile, CA: ca.CertFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli := mustLoad(t, tc.files)
			if _, _, err := tlstest.Handshake(t, srv.ServerConfig(), cli.ClientConfig("codename-server")); err == nil {
				t.Fatal("handshake succeeded, want an error")
			}
		})
	}
}

func TestReloadOnSIGHUP(t *testing.T) {
	ca, srv, cli, _ := setup(t)
	srv.SetCheckEvery(time.Hour) // only the signal may reload
	tlsreload.ReloadOnSIGHUP(t.Context(), srv)
	rotated := ca.Issue(t, "server", "codename-server")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		_, saw, err := tlstest.Handshake(t, srv.ServerConfig(), cli.ClientConfig("codename-server"))
		return err == nil && sameCert(saw, rotated.Cert)
	})
}

func TestReloadOnChange(t *testing.T) {
	ca, srv, cli, old := setup(t)
	srv.SetCheckEvery(10 * time.Millisecond)
	rotated := ca.Issue(t, "server", "codename-server")
	// Another modification time for sure, even on a coarse clock.
	later := time.Now().Add(time.Minute)
	for _, f := range []string{rotated.CertFile, rotated.KeyFile} {
		if err := os.Chtimes(f, later, later); err != nil {
			t.Fatal(err)
		}
	}
	_, saw, err := tlstest.Handshake(t, srv.ServerConfig(), cli.ClientConfig("codename-server"))
	if err != nil {
		t.Fatal(err)
	}
	if !sameCert(saw, old.Cert) && !sameCert(saw, rotated.Cert) {
		t.Fatal("server presented neither certificate")
	}
	eventually(t, func() bool {
		_, saw, err := tlstest.Handshake(t, srv.ServerConfig(), cli.ClientConfig("codename-server"))
		return err == nil && sameCert(saw, rotated.Cert)
	})
}

func TestChangeCheckedAtMostEveryInterval(t *testing.T) {
	ca, srv, cli, old := setup(t)
	srv.SetCheckEvery(time.Hour)
	ca.Issue(t, "server", "codename-server")
	_, saw, err := tlstest.Handshake(t, srv.ServerConfig(), cli.ClientConfig("codename-server"))
	if err != nil {
		t.Fatal(err)
	}
	if !sameCert(saw, old.Cert) {
		t.Error("the files were read again before the interval passed")
	}
}

func TestBadFileKeepsPrevious(t *testing.T) {
	ca, _, cli, pair := setup(t)
	// A handshake's server side, in its own goroutine, may log while the
	// test reads.
	var log runtest.Buffer
	files := tlsreload.Files{Cert: pair.CertFile, Key: pair.KeyFile, CA: ca.CertFile}
	srv, err := tlsreload.Load(files, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		breakIt func(t *testing.T)
	}{
		{"garbage certificate", func(t *testing.T) { writeFile(t, files.Cert, "not a certificate") }},
		{"missing key", func(t *testing.T) { _ = os.Remove(files.Key) }},
		{"key of another certificate", func(t *testing.T) {
			other := ca.Issue(t, "other", "codename-server")
			b, err := os.ReadFile(other.KeyFile)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, files.Key, string(b))
		}},
		{"garbage CA", func(t *testing.T) { writeFile(t, files.CA, "junk") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := ca.Issue(t, "server", "codename-server").Cert // a sound pair first
			srv.Reload()
			tc.breakIt(t)
			srv.Reload()
			serverSaw, saw, err := tlstest.Handshake(t, srv.ServerConfig(), cli.ClientConfig("codename-server"))
			if err != nil {
				t.Fatalf("handshake after a bad reload: %v", err)
			}
			if !sameCert(saw, want) {
				t.Error("server certificate changed after a bad reload")
			}
			if serverSaw == nil {
				t.Error("client certificate not checked after a bad reload")
			}
			if !strings.Contains(log.String(), "keeping the previous") {
				t.Errorf("no warning logged; log:\n%s", log.String())
			}
			writeFile(t, files.CA, string(mustRead(t, ca.CertFile)))
		})
	}
}

func TestClientCARotation(t *testing.T) {
	ca, srv, cli, _ := setup(t)
	srv.SetCheckEvery(time.Hour)
	clientCfg := cli.ClientConfig("codename-server")
	if _, _, err := tlstest.Handshake(t, srv.ServerConfig(), clientCfg); err != nil {
		t.Fatal(err)
	}
	// The servers now trust only a new CA: the old client must go.
	other := tlstest.NewCA(t, "other")
	writeFile(t, ca.CertFile, string(mustRead(t, other.CertFile)))
	srv.Reload()
	if _, _, err := tlstest.Handshake(t, srv.ServerConfig(), clientCfg); err == nil {
		t.Error("a client of the old CA was accepted after the CA rotated")
	}
}

func TestLoadErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "test")
	pair := ca.Issue(t, "server", "codename-server")
	for _, tc := range []struct {
		name  string
		files tlsreload.Files
	}{
		{"cert without key", tlsreload.Files{Cert: pair.CertFile}},
		{"missing cert", tlsreload.Files{Cert: pair.CertFile + ".missing", Key: pair.KeyFile}},
		{"missing CA", tlsreload.Files{CA: ca.CertFile + ".missing"}},
		{"CA not PEM", tlsreload.Files{CA: pair.KeyFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tlsreload.Load(tc.files, nil); err == nil {
				t.Error("Load succeeded, want an error")
			}
		})
	}
}

func TestExistingConnectionsUntouched(t *testing.T) {
	ca, srv, cli, old := setup(t)
	lis, err := tls.Listen("tcp", "127.0.0.1:0", srv.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 1)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
					_, _ = c.Write(buf)
				}
			}()
		}
	}()
	conn, err := tls.Dial("tcp", lis.Addr().String(), cli.ClientConfig("codename-server"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ca.Issue(t, "server", "codename-server")
	srv.Reload()
	if _, err := conn.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := conn.Read(buf); err != nil {
		t.Fatalf("open connection broken by a reload: %v", err)
	}
	if !sameCert(conn.ConnectionState().PeerCertificates[0], old.Cert) {
		t.Error("open connection changed certificate")
	}
}

func eventually(t *testing.T, ok func() bool) {
	t.Helper()
	if _, held := poll.Until(10*time.Second, ok); !held {
		t.Fatal("the new certificate was never presented")
	}
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
