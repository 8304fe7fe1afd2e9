package main

import (
	"testing"
)

// TestVanguardBuilds checks that the vanguard-go yardstick builds the way
// the benchmark builds it, from the folder repoRoot finds: where it does
// not, the benchmark only notes the figure as not measured, which no run
// would fail on.
func TestVanguardBuilds(t *testing.T) {
	root := longTestRoot(t, "builds vanguard-go")
	if _, err := buildVanguard(t.Context(), root, t.TempDir()); err != nil {
		t.Fatal(err)
	}
}
