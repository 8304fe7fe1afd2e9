// Package poll waits for something to become true by asking again every few
// milliseconds, within a limit. It is the one way the stack and the tests
// wait: for a port to accept, a health check to pass, a log line or a
// metric to appear. Every wait is bounded, so a condition that never holds
// fails with what was last seen instead of hanging.
package poll

import (
	"errors"
	"fmt"
	"time"
)

// Interval is how often a condition is asked again: short beside any
// readiness this project waits for, long enough not to load the machine.
const Interval = 10 * time.Millisecond

// ErrGiveUp, wrapped in a check's error, ends Check and For at once: the
// thing waited for can no longer happen (the process died).
var ErrGiveUp = errors.New("gave up")

// Until asks cond every Interval until it holds or limit has passed, and
// says how long that took and whether it held.
func Until(limit time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for !cond() {
		if time.Since(start) > limit {
			return time.Since(start), false
		}
		<-tick.C
	}
	return time.Since(start), true
}

// Check calls check every Interval until it returns nil, an error wrapping
// ErrGiveUp, or limit has passed; it returns nil or check's last error.
func Check(limit time.Duration, check func() error) error {
	var last error
	if _, ok := Until(limit, func() bool {
		last = check()
		return last == nil || errors.Is(last, ErrGiveUp)
	}); !ok {
		return fmt.Errorf("not within %v: %w", limit, last)
	}
	return last
}

// T is the part of testing.TB that For needs; taking it instead of
// testing.TB keeps package testing out of the binaries that import poll.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
}

// For fails t, naming what and check's last error, unless check returns
// nil within limit.
func For(t T, what string, limit time.Duration, check func() error) {
	t.Helper()
	if err := Check(limit, check); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
