package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/codename-gateway/codename-gateway/internal/helptest"
)

func TestHelp(t *testing.T) {
	helptest.Check(t, helptest.Program{
		Name: "codename-stack", About: about, Main: main,
		Run: func(args []string, getenv func(string) string) error {
			return run(t.Context(), args, getenv, io.Discard, io.Discard)
		},
	})
}

// TestHelpNamesHAProxyVariables: every variable haproxy.cfg reads is one
// the stack's help names (a flag's, or one passed on), or one the stack
// sets itself, so that a new setting of the config cannot go unmentioned.
func TestHelpNamesHAProxyVariables(t *testing.T) {
	cfg, err := os.ReadFile("../../haproxy/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	var help strings.Builder
	if err := run(t.Context(), []string{"codename-stack", "-help"}, func(string) string { return "" }, &help, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run(-help) = %v, want flag.ErrHelp", err)
	}
	setByStack := map[string]string{
		"CODENAME_TLS_CERT":            "the development certificate",
		"CODENAME_BACKEND_TLS_CA":      "from CODENAME_BACKEND_TLS",
		"CODENAME_BACKEND_CLIENT_CERT": "from CODENAME_BACKEND_TLS",
		"CODENAME_LOG_FORMAT":          "set by haproxy.cfg itself",
		"CODENAME_GRPC_DNS":            "deployments only: the stack runs its replicas at known addresses",
		"CODENAME_GATEWAY_DNS":         "deployments only",
	}
	seen := map[string]bool{}
	for _, v := range regexp.MustCompile(`CODENAME_[A-Z0-9_]*[A-Z0-9]`).FindAllString(string(cfg), -1) {
		// Replicas 2 to 4 are set with the first one's address flag.
		v = regexp.MustCompile(`_[0-9]+$`).ReplaceAllString(v, "")
		if seen[v] {
			continue
		}
		seen[v] = true
		if _, ok := setByStack[v]; !ok && !strings.Contains(help.String(), "$"+v+"\n") && !strings.Contains(help.String(), "$"+v+" ") {
			t.Errorf("haproxy.cfg reads $%s, which codename-stack -help does not name", v)
		}
	}
	if len(seen) < 15 {
		t.Fatalf("found %d variables in haproxy.cfg, want its capacity, address and TLS ones", len(seen))
	}
}
