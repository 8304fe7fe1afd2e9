package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// haproxyEnv is the environment haproxy.cfg needs, for `haproxy -c`.
func haproxyEnv(t *testing.T, cert string) []string {
	t.Helper()
	env := os.Environ()
	free := freeAddrList(t, 5)
	for i, k := range []string{"CODENAME_HTTPS_ADDR", "CODENAME_HTTP_ADDR", "CODENAME_STATS_ADDR", "CODENAME_GRPC_ADDR", "CODENAME_GATEWAY_ADDR"} {
		env = append(env, k+"="+free[i])
	}
	return append(env, "CODENAME_TLS_CERT="+cert)
}

// haproxies are the HAProxy binaries haproxy.cfg must load on, whichever
// one a run tests: the system's (2.6 on Debian 12), and the 3.x ones
// scripts/setup.sh test installs from Debian's archive.
var haproxies = []string{"haproxy", filepath.Join(repoRoot, "bin/haproxy-3.0"), filepath.Join(repoRoot, "bin/haproxy-3.2")}

// TestHAProxyConfigIsValid: haproxy.cfg loads without a warning on every
// version, in every combination of settings the environment can make.
func TestHAProxyConfigIsValid(t *testing.T) {
	s := shared(t)
	cfg := filepath.Join(repoRoot, "haproxy/haproxy.cfg")
	for _, haproxy := range haproxies {
		t.Run(filepath.Base(haproxy), func(t *testing.T) { checkConfig(t, haproxy, cfg, s) })
	}
}

func checkConfig(t *testing.T, haproxy, cfg string, s *system) {
	for _, tt := range []struct {
		name  string
		extra []string
	}{
		{"one replica", nil},
		{"four replicas", []string{"CODENAME_GRPC_ADDR_2=127.0.0.1:1", "CODENAME_GRPC_ADDR_3=127.0.0.1:2", "CODENAME_GRPC_ADDR_4=127.0.0.1:3",
			"CODENAME_GATEWAY_ADDR_2=127.0.0.1:4", "CODENAME_GATEWAY_ADDR_3=127.0.0.1:5", "CODENAME_GATEWAY_ADDR_4=127.0.0.1:6"}},
		{"replicas found through DNS", []string{"CODENAME_GRPC_DNS=codename-server:9090", "CODENAME_GATEWAY_DNS=codename-gateway:8081"}},
		{"a key and a rate limit", []string{"CODENAME_API_KEY=secret", "CODENAME_RATE_LIMIT=100"}},
		{"stats behind a password", []string{"CODENAME_STATS_USER=ops", "CODENAME_STATS_PASSWORD=secret"}},
		{"TLS to the backends", []string{"CODENAME_BACKEND_TLS_CA=" + s.TLS.CA}},
		{"mutual TLS to the backends", []string{"CODENAME_BACKEND_TLS_CA=" + s.TLS.CA, "CODENAME_BACKEND_CLIENT_CERT=" + s.TLS.Server}},
		{"everything at once", []string{"CODENAME_GRPC_DNS=codename-server:9090", "CODENAME_GATEWAY_DNS=codename-gateway:8081",
			"CODENAME_API_KEY=secret", "CODENAME_RATE_LIMIT=100", "CODENAME_STATS_PASSWORD=secret",
			"CODENAME_BACKEND_TLS_CA=" + s.TLS.CA, "CODENAME_BACKEND_CLIENT_CERT=" + s.TLS.Server}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), haproxy, "-c", "-f", cfg)
			cmd.Env = append(haproxyEnv(t, s.TLS.Server), tt.extra...)
			// Its exit status says whether the file is valid: 2.6 also
			// prints "Configuration file is valid", 3.x prints nothing.
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("haproxy -c: %v\n%s", err, out)
			}
			if strings.Contains(string(out), "WARNING") || strings.Contains(string(out), "Warnings were found") {
				t.Errorf("haproxy -c warns:\n%s", out)
			}
		})
	}
	// The file depends on its environment: without a certificate it must
	// refuse to load rather than start half-configured.
	cmd := exec.CommandContext(t.Context(), haproxy, "-c", "-f", cfg)
	cmd.Env = haproxyEnv(t, filepath.Join(t.TempDir(), "missing.pem"))
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("haproxy -c accepted a missing certificate:\n%s", out)
	}
}

// TestRunCommandStartsAndStopsEverything runs codename-stack, the end of the
// README's run command, the way a user does, and stops it with SIGTERM: it
// must print where to go, serve through HAProxy, and leave nothing running.
func TestRunCommandStartsAndStopsEverything(t *testing.T) {
	state := t.TempDir()
	env := append(os.Environ(), "CODENAME_STATE_DIR="+state)
	// An HAProxy of the repository's bin/ is named as the README names it,
	// relative to the repository: CODENAME_HAPROXY=bin/haproxy-3.2.
	if rel, err := filepath.Rel(repoRoot, stack.HAProxyBinary()); err == nil && strings.HasPrefix(rel, "bin/") {
		env = append(env, "CODENAME_HAPROXY="+rel)
	}
	r := startRunCommand(t, filepath.Join(binDir, "codename-stack"), repoRoot, env, time.Minute)
	banner := r.banner
	for _, want := range []string{"https://localhost", "curl --cacert " + filepath.Join(state, "tls", "ca.pem"), "grpcurl"} {
		if !strings.Contains(banner, want) {
			t.Errorf("banner does not show %q:\n%s", want, banner)
		}
	}
	if _, err := os.Stat(filepath.Join(state, "tls", "ca.pem")); err != nil {
		t.Errorf("no CA in CODENAME_STATE_DIR: %v", err)
	}

	r.stop(t, syscall.SIGTERM, "SIGTERM")
	r.closedAll(t, "after the run command stopped")
}
