package main

import (
	"testing"
)

// TestVanguardBuilds checks that the vanguard-go yardstick still builds.
// Its module points at this one with a replace, so a dependency moved in
// the root go.mod leaves its go.mod stale; the benchmark then only notes
// the figure as not measured, which no run would fail on.
func TestVanguardBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module")
	}
	root, err := repoRoot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := buildVanguard(t.Context(), root, t.TempDir()); err != nil {
		t.Fatal(err)
	}
}
