// Package helptest checks a binary's -help the way a user meets it: the
// test binary runs itself again as the program, so that main's exit status
// and both output streams are the real ones.
package helptest

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// Program is a binary under test.
type Program struct {
	// Name is the program's name, args[0] of its run.
	Name string
	// About is the line its help must open with.
	About string
	// Main is the package's main function.
	Main func()
	// Run calls the package's run with args and getenv, the rest of its
	// arguments discarding output.
	Run func(args []string, getenv func(string) string) error
	// HelpOnStderr says the help goes to standard error: the server's and
	// the gateway's run have no other stream.
	HelpOnStderr bool
}

// childEnv marks the run of the test binary that plays the program.
const childEnv = "CODENAME_HELPTEST_CHILD"

// flagLine is a flag's entry in the help: its name, its value's kind if
// any, and its environment variable.
var flagLine = regexp.MustCompile(`^  -([A-Za-z][\w-]*)( \S+)?   \$([A-Z][A-Z0-9_]*)(   \(default .*\))?$`)

// looksLikeError matches what an error line starts with: the program's
// name and a colon (how main prints an error), or a panic or log level.
var looksLikeError = regexp.MustCompile(`(?m)^(codename-[a-z]+: |panic|.*level=(ERROR|WARN))|help requested`)

// Check runs p with -help, as main runs it, and checks that it exits 0,
// prints the help on its one stream and nothing else, opens with p.About,
// and names each flag's environment variable, and every variable read on
// the way to the help (found by running p.Run with a getenv that notes
// them).
func Check(t *testing.T, p Program) {
	t.Helper()
	if os.Getenv(childEnv) == "1" {
		os.Args = []string{p.Name, "-help"}
		p.Main()
		os.Exit(0)
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$")
	// Without the project's variables, so that the help shows the
	// built-in defaults.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CODENAME_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, childEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s -help: %v, want exit status 0\nstdout:\n%s\nstderr:\n%s", p.Name, err, stdout.String(), stderr.String())
	}
	help, other, otherName := stdout.String(), stderr.String(), "standard error"
	if p.HelpOnStderr {
		help, other, otherName = other, help, "standard output"
	}
	if other != "" {
		t.Errorf("%s -help also printed on %s:\n%s", p.Name, otherName, other)
	}
	if m := looksLikeError.FindString(help); m != "" {
		t.Errorf("%s -help prints what looks like an error (%q):\n%s", p.Name, m, help)
	}
	if strings.Contains(p.About, "\n") || !strings.HasPrefix(p.About, p.Name+" ") || !strings.HasSuffix(p.About, ".") {
		t.Errorf("About %q: want one sentence on one line that starts with %s", p.About, p.Name)
	}
	if first, _, _ := strings.Cut(help, "\n"); first != p.About {
		t.Errorf("%s -help starts with %q, want %q", p.Name, first, p.About)
	}

	named := map[string]bool{}
	flags := 0
	for line := range strings.Lines(help) {
		line = strings.TrimSuffix(line, "\n")
		if !strings.HasPrefix(line, "  -") {
			continue
		}
		m := flagLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("flag line %q does not name an environment variable", line)
			continue
		}
		flags++
		named[m[3]] = true
	}
	if flags == 0 {
		t.Fatalf("%s -help lists no flags:\n%s", p.Name, help)
	}
	read := map[string]bool{}
	err := p.Run([]string{p.Name, "-help"}, func(k string) string {
		read[k] = true
		return ""
	})
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("run(-help) = %v, want flag.ErrHelp", err)
	}
	for k := range read {
		if !strings.Contains(help, "$"+k) {
			t.Errorf("%s reads $%s, which its help does not name", p.Name, k)
		}
	}
}
