package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBannerPaths: the banner names files and tools as a shell in the
// user's folder must be told: relative below it, absolute elsewhere, never
// a bare name that PATH would be searched for.
func TestBannerPaths(t *testing.T) {
	repo := t.TempDir()
	bin := filepath.Join(repo, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"grpcurl", "codename-client"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ca := filepath.Join(repo, ".state", "tls", "ca.pem")
	elsewhere := t.TempDir()
	tests := []struct {
		name, userDir string
		want          []string
	}{
		{"from the repository", repo, []string{
			"  curl --cacert .state/tls/ca.pem 'https://localhost:8443/v1/codename?category=science'\n",
			"  bin/grpcurl -cacert .state/tls/ca.pem -d '{\"category\":\"space\"}' localhost:8443 codename.v1.CodenameCreator/GetCodename\n",
			"  bin/codename-client -addr localhost:8443 -ca .state/tls/ca.pem -category science\n",
		}},
		{"from bin/", bin, []string{
			"  ./grpcurl -cacert " + ca + " ",
			"  ./codename-client -addr localhost:8443 -ca " + ca + " ",
		}},
		{"from another folder", elsewhere, []string{
			"  curl --cacert " + ca + " 'https://localhost:8443/",
			"  " + filepath.Join(bin, "grpcurl") + " -cacert " + ca + " ",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := banner(bannerConfig{userDir: tt.userDir, binDir: bin, ca: ca, httpsAddr: ":8443", httpAddr: ":8080", statsAddr: "127.0.0.1:8404"})
			for _, want := range tt.want {
				if !strings.Contains(got, want) {
					t.Errorf("banner lacks %q:\n%s", want, got)
				}
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/a/ca.pem":  "/tmp/a/ca.pem",
		"/tmp/my dir/ca": "'/tmp/my dir/ca'",
		"/tmp/it's":      `'/tmp/it'\''s'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
