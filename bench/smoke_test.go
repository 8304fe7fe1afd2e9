package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSmoke runs the whole benchmark in its smoke size (short runs, one
// round, 100 held streams) and checks that it writes a table with every
// figure and a chart. It checks that the benchmark works, never how fast
// the system is: no timing can fail it.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts HAProxy, servers and gateways")
	}
	out := t.TempDir()
	var log bytes.Buffer
	if err := run(t.Context(), []string{"bench", "-smoke", "-out", out}, &log, &log); err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range allFigures {
		if !bytes.Contains(md, []byte("\n| "+name+" | ")) {
			t.Errorf("results.md has no row for %q", name)
		}
	}
	// Issue 15 point 5's rows must carry a value, in both gateway modes,
	// not only a line saying why there is none.
	for _, name := range append([]string{figRESTCPU, figCoRESTRatio, figCoRESTCPU, figLatencyP99Add}, names(heldTransportSpecs())...) {
		if bytes.Contains(md, []byte("\n| "+name+" | not measured")) {
			t.Errorf("results.md does not measure %q", name)
		}
	}
	if !bytes.Contains(md, []byte("| figure | measured | target | met? |")) {
		t.Error("results.md has no results table")
	}
	svg, err := os.ReadFile(filepath.Join(out, "results.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(svg), "<svg") || !strings.HasSuffix(strings.TrimSpace(string(svg)), "</svg>") {
		t.Errorf("results.svg is not an SVG document:\n%s", svg)
	}
	if t.Failed() {
		t.Logf("results.md:\n%s", md)
	}
}

// longTestRoot skips a test that starts processes or builds binaries under
// -short, saying what it does, and returns the repository's root.
func longTestRoot(t *testing.T, does string) string {
	t.Helper()
	if testing.Short() {
		t.Skip(does)
	}
	root, err := repoRoot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return root
}
