package main

import (
	"testing"
)

// TestVanguardBuilds checks that the vanguard-go yardstick builds the way
// the benchmark builds it, from the folder repoRoot finds: where it does
// not, the benchmark only notes the figure as not measured, which no run
// would fail on.
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
