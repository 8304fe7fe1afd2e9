package stack

import (
	"path/filepath"
	"testing"

	"github.com/codename-gateway/codename-gateway/internal/devtls"
	"github.com/codename-gateway/codename-gateway/internal/tuning"
)

// TestPlanTellsTheShareOfTheCores: every Go child is told how many
// processes share the cores (its Go siblings and HAProxy), unless the
// environment already says.
func TestPlanTellsTheShareOfTheCores(t *testing.T) {
	dir := t.TempDir()
	files, err := devtls.Ensure(filepath.Join(dir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		env  []string
		want string
	}{
		{"separate: 2 servers, 2 gateways, HAProxy", []string{GatewayModeEnv + "=" + Separate}, "5"},
		{"co-located: 2 servers, HAProxy", []string{GatewayModeEnv + "=" + Colocated}, "3"},
		{"given", []string{tuning.ShareEnv + "=7"}, "7"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{
				StateDir:     dir,
				GRPCAddrs:    []string{"127.0.0.1:1", "127.0.0.1:2"},
				GatewayAddrs: []string{"127.0.0.1:3", "127.0.0.1:4"},
				Env:          append(tt.env, "CODENAME_BACKEND_TLS=off"),
			}
			children, err := plan(cfg, files)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range children {
				if got := lastValue(c.env, tuning.ShareEnv); got != tt.want {
					t.Errorf("%s: %s=%q, want %q", c.name, tuning.ShareEnv, got, tt.want)
				}
			}
		})
	}
}
