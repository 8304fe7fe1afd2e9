package main

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// about describes a run for the top of results.md: how to repeat it, and
// what it ran on, since absolute numbers mean little without that.
func about(ctx context.Context, args []string, o options, started time.Time, load0 string) []string {
	cmd := "go -C bench run . " + strings.Join(args[1:], " ")
	// A version that cannot be read says why, in the version's place.
	version := func(name string, args ...string) string {
		line, err := toolVersion(ctx, name, args...)
		if err != nil {
			line, _, _ = strings.Cut(err.Error(), "\n")
		}
		return line
	}
	lines := []string{
		fmt.Sprintf("Command: `%s` (%d rounds of %v per configuration, %d held streams, %d streams of each transport).", strings.TrimSpace(cmd), o.rounds, o.duration, o.streams, o.transportStreams),
		fmt.Sprintf("Run %s, for %v, on %d CPUs (%s/%s); load average %s before, %s after.",
			started.UTC().Format("2006-01-02 15:04 UTC"), time.Since(started).Round(time.Second), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, load0, loadAverage()),
		fmt.Sprintf("Versions: %s; %s; %s.", version("go", "version"), version(stack.HAProxyBinary(), "-v"), version("h2load", "--version")),
	}
	if o.haproxyConfig != "" || len(o.env) > 0 {
		lines = append(lines, fmt.Sprintf("**Trying a change**: HAProxy config %q, environment %q.", o.haproxyConfig, o.env.String()))
	}
	if o.smoke {
		lines = append(lines, "**Smoke run**: it proves the benchmark works; its numbers mean nothing.")
	}
	return lines
}

// toolVersion returns the first line a program prints about its version,
// on stdout or stderr (nginx -v writes to stderr).
func toolVersion(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line, nil
}
