package codenamev1_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// repoRoot is where scripts/generate.sh and buf.yaml live.
const repoRoot = "../../.."

// TestGeneratedCodeIsFresh regenerates everything from codename.proto into
// a temporary folder and fails if any committed file differs, so that the
// proto and the code built from it cannot drift apart.
func TestGeneratedCodeIsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("runs buf")
	}
	out := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "scripts/generate.sh", out)
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/generate.sh: %v\n%s", err, b)
	}
	// The folder and its subfolders: connect-go's code has a package of
	// its own (codenamev1connect).
	generated := filesUnder(t, filepath.Join(out, "api/codename/v1"))
	if len(generated) < 5 {
		t.Fatalf("generated %d files, want the messages, gRPC stubs, gateway handlers, connect-go handlers and OpenAPI document", len(generated))
	}
	// protoc-gen-es's JavaScript and type declarations for the Node and
	// browser clients, with the google/api files they import.
	js := filesUnder(t, filepath.Join(out, "web/clients/gen"))
	if len(js) < 2 {
		t.Fatalf("generated %d files in web/clients/gen, want codename_pb.js and codename_pb.d.ts at least", len(js))
	}
	generated = append(generated, js...)
	// The page's typed clients, bundled from them (web/clients/typed.mjs).
	bundle := filepath.Join(out, "web/static/typed.js")
	if _, err := os.Stat(bundle); err != nil {
		t.Fatalf("scripts/generate.sh made no page bundle: %v", err)
	}
	generated = append(generated, bundle)
	client, err := filepath.Glob(filepath.Join(out, "api/openapi/openapiclient/*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(client) != 1 {
		t.Fatalf("generated %d files in api/openapi/openapiclient, want the OpenAPI client", len(client))
	}
	for _, path := range append(generated, client...) {
		rel, err := filepath.Rel(out, path)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(repoRoot, rel))
		if err != nil {
			t.Errorf("%s is generated but not committed: %v", rel, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what scripts/generate.sh makes: run it and commit the result", rel)
		}
	}
}

// TestBufLint runs buf lint on the contract; the rules switched off are
// listed, with their reasons, in buf.yaml.
func TestBufLint(t *testing.T) {
	if testing.Short() {
		t.Skip("runs buf")
	}
	// The google/api imports must be in place; generation puts them there.
	gen := exec.CommandContext(t.Context(), "scripts/generate.sh", t.TempDir())
	gen.Dir = repoRoot
	if b, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("scripts/generate.sh: %v\n%s", err, b)
	}
	cmd := exec.CommandContext(t.Context(), "go", "tool", "-modfile=tools/buf/go.mod", "buf", "lint", "api")
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("buf lint: %v\n%s", err, b)
	}
}

// filesUnder lists the files in dir and its subfolders.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
