package main

import (
	"os"
	"strings"
	"testing"
)

// TestFeatureVariants checks that each feature's variant of the
// repository's haproxy.cfg is shorter than the config, and that a line that
// is not there fails instead of giving back the config unchanged.
func TestFeatureVariants(t *testing.T) {
	b, err := os.ReadFile("../haproxy/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for _, f := range features {
		got, err := withoutLines(cfg, f.drop)
		if err != nil {
			t.Errorf("without %s: %v", f.name, err)
			continue
		}
		if dropped := strings.Count(cfg, "\n") - strings.Count(got, "\n"); dropped < len(f.drop) {
			t.Errorf("without %s: %d lines dropped, want at least %d", f.name, dropped, len(f.drop))
		}
	}
	if _, err := withoutLines(cfg, []string{"log global", "no such line"}); err == nil {
		t.Error("a line that is not in the config was dropped without error")
	}
}
