package logbuf

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink records the writes that reach it and tells when one does.
type sink struct {
	mu     sync.Mutex
	writes []string
	wrote  chan struct{}
}

func newSink() *sink { return &sink{wrote: make(chan struct{}, 100)} }

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.writes = append(s.writes, string(p))
	s.mu.Unlock()
	select {
	case s.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (s *sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.writes, "")
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.writes)
}

func TestLinesWaitForFlush(t *testing.T) {
	s := newSink()
	w := New(s, time.Hour)
	for i := range 3 {
		fmt.Fprintf(w, "line %d\n", i)
	}
	if n := s.count(); n != 0 {
		t.Fatalf("%d writes before the flush, want 0", n)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := s.String(), "line 0\nline 1\nline 2\n"; got != want || s.count() != 1 {
		t.Fatalf("after Flush: %d writes of %q, want 1 of %q", s.count(), got, want)
	}
}

func TestLinesGoOutWithinTheInterval(t *testing.T) {
	s := newSink()
	w := New(s, 10*time.Millisecond)
	start := time.Now()
	fmt.Fprintln(w, "hello")
	select {
	case <-s.wrote:
	case <-time.After(5 * time.Second):
		t.Fatal("the line was not written within 5 s")
	}
	if got := s.String(); got != "hello\n" {
		t.Fatalf("wrote %q", got)
	}
	t.Logf("written after %v", time.Since(start))
	// A second burst starts the timer again.
	fmt.Fprintln(w, "again")
	select {
	case <-s.wrote:
	case <-time.After(5 * time.Second):
		t.Fatal("the second line was not written within 5 s")
	}
}

func TestFullBufferIsWrittenAtOnce(t *testing.T) {
	s := newSink()
	w := New(s, time.Hour)
	line := bytes.Repeat([]byte("x"), 1000)
	for range bufferSize/len(line) + 1 {
		if _, err := w.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if s.count() == 0 {
		t.Fatal("a full buffer was not written")
	}
}

func TestWarningsFlushAtOnce(t *testing.T) {
	s := newSink()
	w := New(s, time.Hour)
	l := slog.New(FlushOn(slog.NewTextHandler(w, nil), w, slog.LevelWarn)).With("component", "test").WithGroup("g")
	l.Info("routine")
	if n := s.count(); n != 0 {
		t.Fatalf("an info line was written at once (%d writes)", n)
	}
	l.Warn("trouble", "k", "v")
	out := s.String()
	if !strings.Contains(out, "msg=routine") || !strings.Contains(out, "msg=trouble") || !strings.Contains(out, "component=test") || !strings.Contains(out, "g.k=v") {
		t.Fatalf("after a warning the log holds %q", out)
	}
}

func TestConcurrentWritesKeepLinesWhole(t *testing.T) {
	s := newSink()
	w := New(s, time.Millisecond)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				fmt.Fprintf(w, "g%d-%d\n", g, i)
			}
		})
	}
	wg.Wait()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(s.String(), "\n"), "\n")
	if len(lines) != 8*500 {
		t.Fatalf("%d lines, want %d", len(lines), 8*500)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		seen[l] = true
	}
	if len(seen) != 8*500 {
		t.Fatalf("%d distinct lines, want %d", len(seen), 8*500)
	}
}

func TestNewLogger(t *testing.T) {
	s := newSink()
	l, w := NewLogger(s, "server")
	l.Error("broken", "k", "v")
	if out := s.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "component=server") || !strings.Contains(out, "k=v") {
		t.Fatalf("right after an error the log holds %q", out)
	}
	l.Info("routine")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if out := s.String(); !strings.Contains(out, "msg=routine") {
		t.Fatalf("after Flush the log holds %q", out)
	}
}
