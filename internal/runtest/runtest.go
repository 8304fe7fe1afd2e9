// Package runtest runs a binary's run function in the background for its
// tests, the way main would, and reads the addresses it logs: the one
// harness behind the tests of cmd/codename-server and cmd/codename-gateway.
package runtest

import (
	"context"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/poll"
)

// Timeout bounds every wait of the harness.
const Timeout = 10 * time.Second

// RunFunc is the signature of a binary's run: main calls it with
// os.Args, os.Getenv and os.Stderr.
type RunFunc func(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error

// Run is a run function running in the background.
type Run struct {
	// Stderr is what run has logged so far.
	Stderr *Buffer
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done is closed
}

// Start calls run with args (args[0] is the program's name) and env as its
// environment in the background; it is stopped when the test ends.
func Start(t testing.TB, run RunFunc, args []string, env map[string]string) *Run {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &Run{Stderr: &Buffer{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = run(ctx, args, func(k string) string { return env[k] }, r.Stderr)
	}()
	t.Cleanup(func() { _ = r.Stop(t) })
	return r
}

// NotServing waits for the line that says run serves ready, then checks
// that it logged no "serving what" line.
func (r *Run) NotServing(t testing.TB, ready, what string) {
	t.Helper()
	r.Addr(t, ready)
	if strings.Contains(r.Stderr.String(), "serving "+what) {
		t.Errorf("%q logged, want none:\n%s", "serving "+what, r.Stderr)
	}
}

// Signal ends run's context, as SIGTERM would, without waiting for run
// to return: for tests of what happens while it drains.
func (r *Run) Signal() { r.cancel() }

// Stop ends run as a signal would, and returns what it returned.
func (r *Run) Stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(Timeout):
		t.Fatal("run did not return after its context ended")
	}
	return r.err
}

// Addr waits for the log line that says what the listener called what
// serves on ("serving gRPC", "serving admin" ...), and returns its address.
func (r *Run) Addr(t testing.TB, what string) string {
	t.Helper()
	re := regexp.MustCompile(`msg="serving ` + what + `".* addr=(\S+)`)
	var m []string
	if _, ok := poll.Until(Timeout, func() bool {
		m = re.FindStringSubmatch(r.Stderr.String())
		return m != nil
	}); !ok {
		t.Fatalf("no %q log line within %v; stderr:\n%s", "serving "+what, Timeout, r.Stderr)
	}
	return m[1]
}

// Buffer collects what run logs from several goroutines while the test
// reads it.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
