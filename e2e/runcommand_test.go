package e2e

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// TestRunCommandFromAnotherFolder runs the README's run command,
// scripts/run.sh, as a user would from some other folder: it must find its
// files without writing into that folder, print commands that work pasted
// there by a user whose PATH does not have the repository's bin/, and stop
// on Ctrl-C (SIGINT) without an alarming line.
func TestRunCommandFromAnotherFolder(t *testing.T) {
	work := t.TempDir()
	// Relative to the repository, as the README names it, whatever the
	// folder the command starts in.
	haproxy := stack.HAProxyBinary()
	if rel, err := filepath.Rel(repoRoot, haproxy); err == nil && strings.HasPrefix(rel, "bin/") {
		haproxy = rel
	}
	// setup and a build first
	r := startRunCommand(t, filepath.Join(repoRoot, "scripts", "run.sh"), work,
		append(environWithout("CODENAME_"), "CODENAME_HAPROXY="+haproxy), 4*time.Minute)
	seen := r.banner
	// Its Go tools are pinned, with every dependency: building them never
	// looks a version up.
	if strings.Contains(seen, "finding module") {
		t.Errorf("the run command looked Go modules up:\n%s", seen)
	}
	if entries, err := os.ReadDir(work); err != nil || len(entries) != 0 {
		t.Errorf("the run command wrote into the folder it was started from: %v %v", entries, err)
	}

	commands := bannerCommands(t, seen, work)
	if len(commands) < 7 {
		t.Fatalf("found %d commands in the banner, want curl, grpcurl and client ones:\n%s", len(commands), seen)
	}
	for _, c := range commands {
		t.Run(filepath.Base(strings.Fields(c)[0]), func(t *testing.T) { runPasted(t, c, work) })
	}

	r.stop(t, syscall.SIGINT, "Ctrl-C")
	// What the stop printed. (On a machine this busy, HAProxy may
	// have warned of a slow health check while starting: that is no part
	// of Ctrl-C.)
	_, stopping, ok := strings.Cut(r.output(), "\nstopping\n")
	if !ok {
		t.Fatalf("the run command did not say it was stopping:\n%s", r.output())
	}
	alarming := regexp.MustCompile(`(?m)^.*(ALERT|WARNING|panic|level=(ERROR|WARN)).*$`)
	if lines := alarming.FindAllString(stopping, -1); len(lines) > 0 {
		t.Errorf("Ctrl-C made the run command print alarming lines:\n%s", strings.Join(lines, "\n"))
	}
	if !strings.Contains(stopping, "msg=stopped component=server") || !strings.Contains(stopping, "msg=stopped component=gateway") {
		t.Errorf("the server and the gateway did not say they stopped:\n%s", stopping)
	}
	r.closedAll(t, "after Ctrl-C")
}

// runCommand is the run command (scripts/run.sh, or codename-stack at its
// end) started as a user starts it, on free ports.
type runCommand struct {
	name   string
	cmd    *exec.Cmd
	addrs  map[string]string // its listeners, by the variable that sets each
	banner string            // its output up to the banner's last line
	exited chan error
	mu     sync.Mutex
	all    strings.Builder
}

// startRunCommand starts path in dir with env and its listeners on free
// ports, and returns once it has printed its banner, within limit. Its
// output is read all along, so that its children never block on a full
// pipe; it is killed if the test ends before it stopped.
func startRunCommand(t *testing.T, path, dir string, env []string, limit time.Duration) *runCommand {
	t.Helper()
	r := &runCommand{name: filepath.Base(path), cmd: exec.Command(path), addrs: map[string]string{}, exited: make(chan error, 1)}
	free := freeAddrList(t, 7)
	for i, k := range []string{"CODENAME_HTTPS_ADDR", "CODENAME_HTTP_ADDR", "CODENAME_STATS_ADDR", "CODENAME_GRPC_ADDR", "CODENAME_GATEWAY_ADDR", "CODENAME_GRPC_ADMIN_ADDR", "CODENAME_GATEWAY_ADMIN_ADDR"} {
		r.addrs[k] = free[i]
		env = append(env, k+"="+free[i])
	}
	r.cmd.Dir, r.cmd.Env = dir, env
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r.cmd.Stderr = r.cmd.Stdout
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Only if the test failed before it stopped.
		_ = r.cmd.Process.Kill()
		<-r.exited
	})
	up := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			r.mu.Lock()
			r.all.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
			if strings.Contains(sc.Text(), "Press Ctrl-C to stop") {
				up <- r.output()
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		r.exited <- r.cmd.Wait()
	}()
	select {
	case r.banner = <-up:
	case err := <-r.exited:
		r.exited <- err
		t.Fatalf("%s exited before it was up: %v\n%s", r.name, err, r.output())
	case <-time.After(limit):
		t.Fatalf("%s did not come up within %v:\n%s", r.name, limit, r.output())
	}
	return r
}

// output is what the run command has printed so far.
func (r *runCommand) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.all.String()
}

// stop sends sig (what names it) and waits up to 30 s for a clean exit.
func (r *runCommand) stop(t *testing.T, sig syscall.Signal, what string) {
	t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.exited:
		r.exited <- err
		if err != nil {
			t.Errorf("%s exited with %v after %s, want success", r.name, err, what)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit within 30 s of %s", r.name, what)
	}
}

// closedAll checks that every listener of every child is closed: nothing
// was left behind.
func (r *runCommand) closedAll(t *testing.T, when string) {
	t.Helper()
	for k, a := range r.addrs {
		conn, err := net.DialTimeout("tcp", a, time.Second)
		if err == nil {
			conn.Close()
			t.Errorf("%s (%s) still accepts connections %s", k, a, when)
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%s (%s): %v, want connection refused", k, a, err)
		}
	}
}

// bannerCommands returns the commands of the banner: its indented lines
// that are not comments, between "is up" and the page's address.
func bannerCommands(t *testing.T, out, dir string) []string {
	t.Helper()
	start := strings.Index(out, "codename-gateway is up. Try, from "+dir+":")
	end := strings.Index(out, "The web page is at ")
	if start < 0 || end < start {
		t.Fatalf("no banner for %s in:\n%s", dir, out)
	}
	var cmds []string
	for line := range strings.Lines(out[start:end]) {
		line = strings.TrimSuffix(line, "\n")
		if strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "  #") {
			cmds = append(cmds, strings.TrimSpace(line))
		}
	}
	return cmds
}

// runPasted runs a banner command as a user pasting it into a shell in
// dir would, with a PATH that lacks the repository's bin/ and nothing to
// read on standard input, and checks what it printed.
func runPasted(t *testing.T, command, dir string) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", command)
	cmd.Dir = dir
	// The shell and what it runs are one process group, stopped together.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var path []string
	for _, p := range filepath.SplitList(os.Getenv("PATH")) {
		if abs, err := filepath.Abs(p); err == nil && abs != filepath.Join(repoRoot, "bin") {
			path = append(path, p)
		}
	}
	cmd.Env = append(os.Environ(), "PATH="+strings.Join(path, string(filepath.ListSeparator)))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if strings.Contains(command, "codenames:stream") {
		pastedStream(t, cmd, cancel, command)
		return
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s\nfailed: %v\n%s%s", command, err, out, stderr.String())
	}
	var want *regexp.Regexp
	switch {
	case strings.Contains(command, "GetCodename"):
		want = regexp.MustCompile(`"name": "[A-Z]`)
	case strings.Contains(command, "codename-client"):
		want = regexp.MustCompile(`^[A-Z][a-z]+ [A-Z][a-z]+\n$`)
	case strings.Contains(command, "/v1/codename?"):
		want = regexp.MustCompile(`^\{"name":"[A-Z]`)
	case strings.Contains(command, "openapi.json"):
		want = regexp.MustCompile(`"paths"`)
	case strings.Contains(command, "/metrics"):
		want = regexp.MustCompile(`(?m)^haproxy_process_`)
	default:
		t.Fatalf("no expectation for the banner's command %s", command)
	}
	if !want.Match(out) {
		t.Errorf("%s\nprinted %q, want a match for %s", command, out, want)
	}
}

// pastedStream runs the banner's stream, which goes on until Ctrl-C, as a
// user who types one category: it must answer with codenames of that
// category, one JSON object a line.
func pastedStream(t *testing.T, cmd *exec.Cmd, stop func(), command string) {
	t.Helper()
	cmd.Stdin = strings.NewReader(`{"category":"science"}` + "\n")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stop() // the user's Ctrl-C
		_ = cmd.Wait()
	}()
	sc := bufio.NewScanner(out)
	name := regexp.MustCompile(`^\{"result":\{"name":"([^"]+)"\}\}$`)
	for i := 0; i < 2; i++ {
		if !sc.Scan() {
			t.Fatalf("%s\nended after %d lines: %v", command, i, sc.Err())
		}
		m := name.FindStringSubmatch(sc.Text())
		if m == nil || categoryOf(m[1]) != "science" {
			t.Errorf("%s\nline %q, want a science codename as {\"result\":{\"name\":...}}", command, sc.Text())
		}
	}
}

// TestRunCommandOutsideItsRepository: a copy of run.sh that is not in a
// checkout says so, and writes nothing, neither where it lies nor where
// it was started.
func TestRunCommandOutsideItsRepository(t *testing.T) {
	copyDir, startDir := t.TempDir(), t.TempDir()
	script, err := os.ReadFile(filepath.Join(repoRoot, "scripts", "run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(copyDir, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(copyDir, "scripts", "run.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), filepath.Join(copyDir, "scripts", "run.sh"))
	cmd.Dir = startDir
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("run.sh outside a checkout: %v, want exit status 1\n%s", err, out)
	}
	want := "run.sh: " + filepath.Join(copyDir, "go.mod") + " is missing: run the run.sh of a checkout of the repository (its scripts/run.sh)\n"
	if string(out) != want {
		t.Errorf("printed %q, want %q", out, want)
	}
	for _, dir := range []string{copyDir, startDir} {
		for _, name := range []string{".state", "bin"} {
			if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s/%s exists (%v): written before the check", dir, name, err)
			}
		}
	}
}

// TestStackHelpNamesEveryChildSetting: every variable the server's and the
// gateway's -help name is either set by the stack for each child (found in
// internal/stack's source, as "CODENAME_X=") or named by the stack's own
// -help, so that the run command's user finds every setting in one place.
func TestStackHelpNamesEveryChildSetting(t *testing.T) {
	help := func(name string) string {
		out, err := exec.CommandContext(t.Context(), filepath.Join(binDir, name), "-help").CombinedOutput()
		if err != nil {
			t.Fatalf("%s -help: %v\n%s", name, err, out)
		}
		return string(out)
	}
	stackHelp := help("codename-stack")
	srcs, err := filepath.Glob(filepath.Join(repoRoot, "internal", "stack", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, src := range srcs {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`"(CODENAME_[A-Z0-9_]+)=`).FindAllSubmatch(b, -1) {
			set[string(m[1])] = true
		}
	}
	variable := regexp.MustCompile(`\$(CODENAME_[A-Z0-9_]+)\b`)
	for _, child := range []string{"codename-server", "codename-gateway"} {
		vars := variable.FindAllStringSubmatch(help(child), -1)
		if len(vars) < 10 {
			t.Fatalf("%s -help names %d variables, want all its flags'", child, len(vars))
		}
		for _, m := range vars {
			if !set[m[1]] && !strings.Contains(stackHelp, "$"+m[1]+"\n") && !strings.Contains(stackHelp, "$"+m[1]+" ") {
				t.Errorf("%s reads $%s, which the stack neither sets nor names in its -help", child, m[1])
			}
		}
	}
}
