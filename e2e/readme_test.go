package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// readmeExample is a shell block of README.md with the output it promises.
type readmeExample struct {
	command string
	expect  *regexp.Regexp
}

// readmeExamples returns every ```sh block that follows an
// <!-- expect: REGEXP --> comment in README.md.
func readmeExamples(t *testing.T) []readmeExample {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- expect: (.*?) -->\n```sh\n(.*?)```")
	var examples []readmeExample
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		examples = append(examples, readmeExample{command: m[2], expect: regexp.MustCompile("(?m)" + regexp.QuoteMeta(m[1]))})
		if strings.HasPrefix(m[1], "^") {
			examples[len(examples)-1].expect = regexp.MustCompile("(?m)" + m[1])
		}
	}
	return examples
}

// TestREADMEExamples runs the README's examples as written, from a folder
// laid out like the repository after the run command (.state/ and bin/),
// against a stack with the default stream interval. Only the port numbers
// change, since the tests cannot take the default ports.
func TestREADMEExamples(t *testing.T) {
	examples := readmeExamples(t)
	if len(examples) < 8 {
		t.Fatalf("found %d examples in README.md, want the curl, grpcurl and client ones", len(examples))
	}
	work := t.TempDir()
	s := startSystemIn(t, filepath.Join(work, ".state"), 1, "", "CODENAME_STREAM_INTERVAL=1s")
	if err := os.Mkdir(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	grpcurl, err := exec.LookPath("grpcurl")
	if err != nil {
		t.Fatalf("grpcurl is not on PATH (scripts/setup.sh installs it into bin/): %v", err)
	}
	for link, target := range map[string]string{
		"codename-client": filepath.Join(binDir, "codename-client"),
		"grpcurl":         grpcurl,
	} {
		if err := os.Symlink(target, filepath.Join(work, "bin", link)); err != nil {
			t.Fatal(err)
		}
	}
	// The examples name the run command's default ports; this stack
	// listens on free ones instead, so each documented port number becomes
	// the port of the listener it stands for. Nothing listens on the
	// documented ports here.
	var swaps []string
	for _, l := range []struct{ documented, addr string }{
		{"8443", s.cfg.HTTPSAddr},
		{"8080", s.cfg.HTTPAddr},
		{"8404", s.cfg.StatsAddr},
	} {
		_, port, _ := net.SplitHostPort(l.addr)
		swaps = append(swaps, "localhost:"+l.documented, "localhost:"+port)
	}
	ports := strings.NewReplacer(swaps...)

	for _, ex := range examples {
		name := strings.Fields(ex.command)[0]
		switch {
		case strings.Contains(ex.command, "text/event-stream"):
			name = "curl sse"
		case strings.Contains(ex.command, "codenames:stream"):
			name = "curl stream"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "-c", ports.Replace(ex.command))
			cmd.Dir = work
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s\nfailed: %v\n%s%s", ex.command, err, out, stderr.String())
			}
			if !ex.expect.Match(out) {
				t.Fatalf("%s\nprinted %q, want a match for %s", ex.command, out, ex.expect)
			}
			if name == "curl stream" {
				checkStreamExample(t, string(out))
			}
		})
	}
}

// checkStreamExample checks that the curl stream example shows what the
// README says: six codenames, animals first and, after the switch, science.
func checkStreamExample(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 {
		t.Fatalf("got %d lines, want 6:\n%s", len(lines), out)
	}
	name := regexp.MustCompile(`"name":"([^"]+)"`)
	first, last := name.FindStringSubmatch(lines[0]), name.FindStringSubmatch(lines[5])
	if first == nil || last == nil || categoryOf(first[1]) != "animals" || categoryOf(last[1]) != "science" {
		t.Errorf("want animals first and science last:\n%s", out)
	}
}
