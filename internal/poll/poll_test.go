package poll

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	n := 0
	if _, ok := Until(time.Second, func() bool { n++; return n == 3 }); !ok || n != 3 {
		t.Fatalf("Until held=%v after %d calls, want true after 3", ok, n)
	}
	took, ok := Until(30*time.Millisecond, func() bool { return false })
	if ok || took < 30*time.Millisecond {
		t.Fatalf("Until of a condition that never holds: held=%v after %v, want false after at least 30ms", ok, took)
	}
}

func TestCheckReturnsTheLastError(t *testing.T) {
	n := 0
	err := Check(30*time.Millisecond, func() error { n++; return fmt.Errorf("attempt %d", n) })
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("attempt %d", n)) {
		t.Fatalf("Check = %v, want the last attempt's error (attempt %d)", err, n)
	}
}

func TestCheckGivesUp(t *testing.T) {
	n := 0
	err := Check(time.Minute, func() error { n++; return fmt.Errorf("process exited: %w", ErrGiveUp) })
	if !errors.Is(err, ErrGiveUp) || n != 1 {
		t.Fatalf("Check = %v after %d calls, want ErrGiveUp after 1", err, n)
	}
}

type fatalRecorder struct{ msg string }

func (*fatalRecorder) Helper()                             {}
func (f *fatalRecorder) Fatalf(format string, args ...any) { f.msg = fmt.Sprintf(format, args...) }

func TestForFailsNamingWhatAndWhy(t *testing.T) {
	var r fatalRecorder
	For(&r, "the port", 20*time.Millisecond, func() error { return errors.New("connection refused") })
	if !strings.Contains(r.msg, "the port") || !strings.Contains(r.msg, "connection refused") {
		t.Fatalf("For failed with %q, want it to name the port and the last error", r.msg)
	}
	r = fatalRecorder{}
	For(&r, "nothing", time.Second, func() error { return nil })
	if r.msg != "" {
		t.Fatalf("For failed with %q on a check that passed", r.msg)
	}
}
