package tools

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSetupBuildsPinnedTools: every tool that scripts/setup.sh builds into
// bin/ was built from its module here, with exactly the module versions
// and checksums that module's go.sum pins; and setup installs no Go tool
// any other way.
func TestSetupBuildsPinnedTools(t *testing.T) {
	setup, err := os.ReadFile("../scripts/setup.sh")
	if err != nil {
		t.Fatal(err)
	}
	// A `go install pkg@version` or `go get` resolves versions at install
	// time: its dependencies are whatever that day's lookup finds.
	if m := regexp.MustCompile(`(?m)^[^#\n]*\bgo (install|get|run)\b.*$`).Find(setup); m != nil {
		t.Errorf("scripts/setup.sh installs a Go tool outside tools/: %s", m)
	}
	// The tools a script runs with `go tool -modfile=tools/DIR/go.mod`
	// (buf, oapi-codegen) are built by go tool from their module each
	// time, into Go's cache; every other module's tools are setup's.
	scripts, err := filepath.Glob("../scripts/*.sh")
	if err != nil {
		t.Fatal(err)
	}
	goTool := map[string]bool{}
	for _, s := range scripts {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`go tool -modfile=tools/([\w.-]+)/go\.mod`).FindAllSubmatch(b, -1) {
			goTool[string(m[1])] = true
		}
	}
	if !goTool["buf"] {
		t.Fatalf("no script runs buf with go tool -modfile=tools/buf/go.mod: %v", goTool)
	}
	mods, err := filepath.Glob("*/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, mod := range mods {
		dir := filepath.Dir(mod)
		if goTool[dir] {
			continue
		}
		sums := goSum(t, filepath.Join(dir, "go.sum"))
		for _, pkg := range toolPackages(t, dir) {
			name := pkg[strings.LastIndex(pkg, "/")+1:]
			if name != dir {
				name = dir + "-" + name
			}
			t.Run(name, func(t *testing.T) {
				bin := filepath.Join("..", "bin", name)
				out, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
				if err != nil {
					t.Fatalf("go version -m %s: %v\n%s(scripts/setup.sh test builds it)", bin, err, out)
				}
				deps := 0
				for line := range strings.Lines(string(out)) {
					f := strings.Fields(line)
					switch {
					case len(f) == 2 && f[0] == "path":
						if f[1] != pkg {
							t.Errorf("bin/%s is %s, want %s", name, f[1], pkg)
						}
					case len(f) >= 3 && (f[0] == "mod" || f[0] == "dep"):
						deps++
						if len(f) != 4 {
							t.Errorf("bin/%s: %q has no checksum (built from a replaced or local module?)", name, strings.TrimSpace(line))
							continue
						}
						if want, ok := sums[f[1]+" "+f[2]]; !ok {
							t.Errorf("bin/%s was built with %s %s, which tools/%s/go.sum does not pin", name, f[1], f[2], dir)
						} else if f[3] != want {
							t.Errorf("bin/%s: %s %s has checksum %s, tools/%s/go.sum says %s", name, f[1], f[2], f[3], dir, want)
						}
					case len(f) >= 2 && f[0] == "=>":
						t.Errorf("bin/%s was built with a replacement: %s", name, strings.TrimSpace(line))
					}
				}
				if deps == 0 {
					t.Errorf("go version -m %s lists no modules:\n%s", bin, out)
				}
			})
			checked++
		}
	}
	if checked < 4 {
		t.Errorf("checked %d tools, want grpcurl, h2spec, interop-client and interop-server at least", checked)
	}
}

// goSum returns the h1: checksum of each module's content ("path version"
// to hash) that a go.sum pins.
func goSum(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && !strings.HasSuffix(fields[1], "/go.mod") {
			sums[fields[0]+" "+fields[1]] = fields[2]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(sums) == 0 {
		t.Fatalf("%s pins nothing", path)
	}
	return sums
}

// toolPackages returns the packages a module's go.mod names on tool lines.
func toolPackages(t *testing.T, dir string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "tool")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list tool in tools/%s: %v", dir, err)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) == 0 {
		t.Fatalf("tools/%s/go.mod has no tool line", dir)
	}
	return pkgs
}
