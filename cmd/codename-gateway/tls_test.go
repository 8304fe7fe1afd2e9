package main

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/codename-gateway/codename-gateway/internal/envflag"
	"github.com/codename-gateway/codename-gateway/internal/poll"
	"github.com/codename-gateway/codename-gateway/internal/tlsreload"
	"github.com/codename-gateway/codename-gateway/internal/tlsreload/tlstest"
)

func TestTLSFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    tlsFiles
		wantErr bool
	}{
		{name: "defaults: cleartext", want: tlsFiles{serverName: "codename-server"}},
		{name: "everything from the environment",
			env: map[string]string{
				"CODENAME_GATEWAY_TLS_CERT":      "gw.pem",
				"CODENAME_GATEWAY_TLS_KEY":       "gw-key.pem",
				"CODENAME_GATEWAY_TLS_CLIENT_CA": "edge-ca.pem",
				"CODENAME_GRPC_TLS_CA":           "ca.pem",
				"CODENAME_GRPC_TLS_SERVER_NAME":  "backend",
				"CODENAME_GATEWAY_CLIENT_CERT":   "client.pem",
				"CODENAME_GATEWAY_CLIENT_KEY":    "client-key.pem",
			},
			want: tlsFiles{
				serve:      tlsreload.Files{Cert: "gw.pem", Key: "gw-key.pem", CA: "edge-ca.pem"},
				grpc:       tlsreload.Files{Cert: "client.pem", Key: "client-key.pem", CA: "ca.pem"},
				serverName: "backend",
			}},
		{name: "flags win",
			args: []string{"-tls-cert=a.pem", "-tls-key=b.pem", "-grpc-tls-ca=c.pem", "-grpc-tls-server-name=other"},
			env:  map[string]string{"CODENAME_GATEWAY_TLS_CERT": "gw.pem", "CODENAME_GATEWAY_TLS_KEY": "gw-key.pem", "CODENAME_GRPC_TLS_CA": "ca.pem"},
			want: tlsFiles{
				serve:      tlsreload.Files{Cert: "a.pem", Key: "b.pem"},
				grpc:       tlsreload.Files{CA: "c.pem"},
				serverName: "other",
			}},
		{name: "certificate without key", env: map[string]string{"CODENAME_GATEWAY_TLS_CERT": "gw.pem"}, wantErr: true},
		{name: "client CA without certificate", env: map[string]string{"CODENAME_GATEWAY_TLS_CLIENT_CA": "ca.pem"}, wantErr: true},
		{name: "client certificate without key", env: map[string]string{"CODENAME_GRPC_TLS_CA": "ca.pem", "CODENAME_GATEWAY_CLIENT_CERT": "c.pem"}, wantErr: true},
		{name: "client certificate without gRPC CA", env: map[string]string{"CODENAME_GATEWAY_CLIENT_CERT": "c.pem", "CODENAME_GATEWAY_CLIENT_KEY": "k.pem"}, wantErr: true},
		{name: "empty server name", args: []string{"-grpc-tls-ca=ca.pem", "-grpc-tls-server-name="}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := envflag.New("codename-gateway", func(k string) string { return tt.env[k] }, io.Discard)
			v := defineTLSFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			got, err := v.files()
			if tt.wantErr {
				if err == nil {
					t.Errorf("files() = %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("files(): %v", err)
			}
			if got != tt.want {
				t.Errorf("files() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// tlsHealthServer serves grpc.health.v1 over TLS with a certificate for
// "codename-server" from ca, requiring a client certificate from ca if
// mutual.
func tlsHealthServer(t *testing.T, ca *tlstest.CA, mutual bool) string {
	t.Helper()
	pair := ca.Issue(t, "server", "codename-server")
	files := tlsreload.Files{Cert: pair.CertFile, Key: pair.KeyFile}
	if mutual {
		files.CA = ca.CertFile
	}
	src, err := tlsreload.Load(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	return serveHealth(t, grpc.Creds(credentials.NewTLS(src.ServerConfig())))
}

// TestDialTLS: the gateway's connection to the servers verifies their
// chain and name, and presents its client certificate.
func TestDialTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "test")
	addr := tlsHealthServer(t, ca, true)
	client := ca.Issue(t, "gateway-client", "codename-gateway")
	other := tlstest.NewCA(t, "other")
	mtls := tlsreload.Files{Cert: client.CertFile, Key: client.KeyFile, CA: ca.CertFile}
	tests := []struct {
		name   string
		files  tlsFiles
		wantOK bool
	}{
		{name: "mutual TLS", files: tlsFiles{grpc: mtls, serverName: "codename-server"}, wantOK: true},
		{name: "wrong server name", files: tlsFiles{grpc: mtls, serverName: "elsewhere"}},
		{name: "unknown CA", files: tlsFiles{grpc: tlsreload.Files{Cert: client.CertFile, Key: client.KeyFile, CA: other.CertFile}, serverName: "codename-server"}},
		{name: "no client certificate", files: tlsFiles{grpc: tlsreload.Files{CA: ca.CertFile}, serverName: "codename-server"}},
		{name: "cleartext", files: tlsFiles{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, creds, err := tt.files.load(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			conn, err := dial([]string{addr}, prometheus.NewRegistry(), creds)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			if (err == nil) != tt.wantOK {
				t.Errorf("health Check: err = %v, want success %v", err, tt.wantOK)
			}
		})
	}
}

// TestRunTLS: with every TLS variable set, the gateway serves HTTPS over
// h2 and http/1.1 to clients with a certificate only, and its /healthz,
// which asks the servers' health over the TLS hop, says SERVING.
func TestRunTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "test")
	grpcAddr := tlsHealthServer(t, ca, true)
	gw := ca.Issue(t, "gateway", "codename-gateway")
	gwClient := ca.Issue(t, "gateway-client", "codename-gateway")
	edge := ca.Issue(t, "haproxy", "haproxy")
	g := startRunEnv(t, map[string]string{
		"CODENAME_GATEWAY_TLS_CERT":      gw.CertFile,
		"CODENAME_GATEWAY_TLS_KEY":       gw.KeyFile,
		"CODENAME_GATEWAY_TLS_CLIENT_CA": ca.CertFile,
		"CODENAME_GRPC_TLS_CA":           ca.CertFile,
		"CODENAME_GATEWAY_CLIENT_CERT":   gwClient.CertFile,
		"CODENAME_GATEWAY_CLIENT_KEY":    gwClient.KeyFile,
	}, "-addr", "127.0.0.1:0", "-admin-addr", "", "-grpc-addr", grpcAddr, "-drain-delay", "0")
	addr := g.Addr(t, "REST")

	edgeTLS := func(t *testing.T, files tlsreload.Files, alpn string) *http.Client {
		src, err := tlsreload.Load(files, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg := src.ClientConfig("codename-gateway")
		cfg.NextProtos = []string{alpn}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: alpn == "h2"}, Timeout: waitTimeout}
	}
	for _, alpn := range []string{"h2", "http/1.1"} {
		t.Run(alpn, func(t *testing.T) {
			c := edgeTLS(t, tlsreload.Files{Cert: edge.CertFile, Key: edge.KeyFile, CA: ca.CertFile}, alpn)
			var resp *http.Response
			if _, ok := poll.Until(waitTimeout, func() bool {
				var err error
				resp, err = c.Get("https://" + addr + "/healthz")
				if err != nil {
					t.Fatalf("GET /healthz: %v", err)
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			}); !ok {
				t.Fatalf("GET /healthz = %d, want 200 once the servers are reached; stderr:\n%s", resp.StatusCode, g.Stderr)
			}
			if resp.TLS == nil || resp.TLS.NegotiatedProtocol != alpn {
				t.Errorf("negotiated %v, want %s", resp.TLS, alpn)
			}
			if resp, err := edgeTLS(t, tlsreload.Files{CA: ca.CertFile}, alpn).Get("https://" + addr + "/healthz"); err == nil {
				resp.Body.Close()
				t.Errorf("GET /healthz without a client certificate = %d, want a refused handshake", resp.StatusCode)
			}
		})
	}
}
