package e2e

import (
	"context"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The README's examples are its ```sh blocks. Each one carries, on the
// line just above it, the check that proves it:
//
//	<!-- expect: exact -->        the block after it is what the command prints
//	<!-- expect: match REGEXP --> the block after it, and what the command
//	                              prints, both match REGEXP as a whole; in
//	                              REGEXP, CODENAME stands for any codename
//	<!-- expect: run by NAME -->  a test function (TestX) or a repository file
//	                              (.ci/run) runs it, for commands that run
//	                              long or need what the machine lacks
//
// The shown output is the fenced block right after the command's (a blank
// line between them at most). An example without a check, or whose shown
// output its own check would refuse, fails TestREADMEExamples.

// readmeExample is a shell block of README.md with the check it carries.
type readmeExample struct {
	line    int    // of the command's opening fence
	command string // without the block's indentation
	check   string // "exact", "match", "run by", or "" when it carries none
	arg     string // the regexp of match, the name of run by
	shown   string // the output block, for exact and match
	pattern *regexp.Regexp
}

// readmeBlock is a fenced block of README.md.
type readmeBlock struct {
	open, close int // line numbers (1-based) of its fences
	lang        string
	text        string // de-indented, each line ending in a newline
	before      string // the line just above the opening fence, trimmed
}

var (
	readmeFence  = regexp.MustCompile("^( *)```([A-Za-z0-9_+-]*)$")
	readmeMarker = regexp.MustCompile(`^<!-- expect: (exact|match|run by)(?: (.+))? -->$`)
	// codenameRE is what a codename looks like: two capitalised words.
	codenameRE = `[A-Z][a-z]+ [A-Z][a-z]+`
)

// readmeBlocks returns README.md's fenced blocks, in order.
func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var blocks []readmeBlock
	for i := 0; i < len(lines); i++ {
		m := readmeFence.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		indent, blk := m[1], readmeBlock{open: i + 1, lang: m[2]}
		if i > 0 {
			blk.before = strings.TrimSpace(lines[i-1])
		}
		var text strings.Builder
		for i++; i < len(lines) && lines[i] != indent+"```"; i++ {
			text.WriteString(strings.TrimPrefix(lines[i], indent) + "\n")
		}
		if i == len(lines) {
			t.Fatalf("README.md line %d: a fenced block that never closes", blk.open)
		}
		blk.close, blk.text = i+1, text.String()
		blocks = append(blocks, blk)
	}
	return blocks
}

// readmeExamples returns every ```sh block of README.md with its check.
func readmeExamples(t *testing.T) []readmeExample {
	t.Helper()
	blocks := readmeBlocks(t)
	var examples []readmeExample
	for i, blk := range blocks {
		if blk.lang != "sh" {
			continue
		}
		ex := readmeExample{line: blk.open, command: blk.text}
		if m := readmeMarker.FindStringSubmatch(blk.before); m != nil {
			ex.check, ex.arg = m[1], m[2]
		}
		if ex.check == "exact" || ex.check == "match" {
			if i+1 < len(blocks) && blocks[i+1].lang != "sh" && blocks[i+1].open-blk.close <= 2 {
				ex.shown = blocks[i+1].text
			}
		}
		if ex.check == "match" {
			re, err := regexp.Compile(`^(?:` + strings.ReplaceAll(ex.arg, "CODENAME", codenameRE) + `)$`)
			if err != nil {
				t.Fatalf("README.md line %d: %v", ex.line, err)
			}
			ex.pattern = re
		}
		examples = append(examples, ex)
	}
	return examples
}

// sameOutput reports whether got is the output want shows, but for the
// last newline, which a fenced block always has and curl's answers lack.
func sameOutput(got, want string) bool {
	return strings.TrimSuffix(got, "\n") == strings.TrimSuffix(want, "\n")
}

// TestREADMEChecks checks, without running anything, that every example of
// the README carries a check, that the output it shows passes that check,
// and that what a run by names exists.
func TestREADMEChecks(t *testing.T) {
	examples := readmeExamples(t)
	if len(examples) < 15 {
		t.Fatalf("found %d examples in README.md, want the curl, grpcurl, client and run command ones", len(examples))
	}
	for _, ex := range examples {
		where := "README.md line " + strconv.Itoa(ex.line) + " (" + strings.TrimSpace(strings.SplitN(ex.command, "\n", 2)[0]) + ")"
		switch ex.check {
		case "":
			t.Errorf("%s: the example carries no check: put <!-- expect: exact -->, <!-- expect: match REGEXP --> or <!-- expect: run by TestX --> on the line above it", where)
		case "exact", "match":
			if ex.shown == "" {
				t.Errorf("%s: %s needs the output, as a fenced block right after the command", where, ex.check)
			} else if ex.check == "match" && !ex.pattern.MatchString(strings.TrimSuffix(ex.shown, "\n")) {
				t.Errorf("%s: the output shown does not match its own check %s:\n%s", where, ex.pattern, ex.shown)
			}
		case "run by":
			if !runByExists(t, ex.arg) {
				t.Errorf("%s: run by %q, which is neither a test function nor a file of the repository", where, ex.arg)
			}
		}
	}
}

// runByExists reports whether name is a test function (func name( in a
// _test.go file of the repository) or a file of the repository.
func runByExists(t *testing.T, name string) bool {
	t.Helper()
	if !strings.HasPrefix(name, "Test") {
		_, err := os.Stat(filepath.Join(repoRoot, name))
		return err == nil && !strings.Contains(name, "..")
	}
	found := false
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil || found {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == ".state") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			found = strings.Contains(string(b), "\nfunc "+name+"(t *testing.T)")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestREADMEExamples runs the README's examples that show their output, as
// written, from a folder laid out like the repository after the run
// command (.state/ and bin/), against a stack with the default stream
// interval, and checks what each prints against its check. Only the port
// numbers change, since the tests cannot take the default ports.
func TestREADMEExamples(t *testing.T) {
	t.Parallel() // a system of its own; mostly waiting on streams that tick once a second
	var examples []readmeExample
	for _, ex := range readmeExamples(t) {
		if ex.check == "exact" || ex.check == "match" {
			examples = append(examples, ex)
		}
	}
	if len(examples) < 12 {
		t.Fatalf("found %d examples to run in README.md, want the curl, grpcurl and client ones", len(examples))
	}
	work := t.TempDir()
	s := start(t, stateDir(filepath.Join(work, ".state")), withEnv("CODENAME_STREAM_INTERVAL=1s"))
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
			switch ex.check {
			case "exact":
				if !sameOutput(string(out), ex.shown) {
					t.Errorf("%s\nprinted %q, want what README.md line %d shows: %q", ex.command, out, ex.line, ex.shown)
				}
			case "match":
				if !ex.pattern.MatchString(strings.TrimSuffix(string(out), "\n")) {
					t.Errorf("%s\nprinted %q, want a match for %s", ex.command, out, ex.pattern)
				}
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
