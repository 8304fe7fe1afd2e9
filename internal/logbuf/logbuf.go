// Package logbuf batches log output into few large writes. A busy server
// logs a line per call, and writing each line with its own system call cost
// about a fifth of the server's CPU time; buffered, the lines go out when
// the buffer fills or, at the latest, one interval after the first of them
// was written, and at once for lines that report trouble.
package logbuf

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Writer is an io.Writer that buffers what is written to it and passes it on
// in large writes. It is safe for concurrent use, and it holds no goroutine:
// a timer runs only while something waits in the buffer.
type Writer struct {
	mu    sync.Mutex
	buf   *bufio.Writer
	timer *time.Timer
	// interval is the longest a line waits in the buffer.
	interval time.Duration
}

// DefaultInterval is how long a line may wait in the buffer by default:
// short enough that someone tailing the log sees no delay.
const DefaultInterval = 100 * time.Millisecond

// bufferSize is what one write passes on at most: a few hundred lines.
const bufferSize = 64 << 10

// New returns a Writer that passes what is written to it on to w, at the
// latest interval after it was written (DefaultInterval if zero or less).
// Call Flush before the program exits.
func New(w io.Writer, interval time.Duration) *Writer {
	if interval <= 0 {
		interval = DefaultInterval
	}
	bw := &Writer{buf: bufio.NewWriterSize(w, bufferSize), interval: interval}
	bw.timer = time.AfterFunc(time.Hour, func() { _ = bw.Flush() })
	bw.timer.Stop()
	return bw
}

// Write buffers p. An error of the underlying writer is returned by the
// Write or Flush that meets it.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Buffered() == 0 {
		w.timer.Reset(w.interval)
	}
	return w.buf.Write(p)
}

// Flush passes on everything buffered.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer.Stop()
	return w.buf.Flush()
}

// NewLogger returns the text logger of a binary, whose lines go to w through
// a Writer (flush it before exiting), warnings and errors at once, each
// line naming the component.
func NewLogger(w io.Writer, component string) (*slog.Logger, *Writer) {
	out := New(w, DefaultInterval)
	return slog.New(FlushOn(slog.NewTextHandler(out, nil), out, slog.LevelWarn)).With("component", component), out
}

// FlushOn returns a handler that writes through h and flushes w after every
// record at level min or above, so that warnings and errors are never held
// back (a process that is about to crash would lose them).
func FlushOn(h slog.Handler, w *Writer, min slog.Level) slog.Handler {
	return flushing{Handler: h, w: w, min: min}
}

type flushing struct {
	slog.Handler
	w   *Writer
	min slog.Level
}

func (f flushing) Handle(ctx context.Context, r slog.Record) error {
	err := f.Handler.Handle(ctx, r)
	if r.Level >= f.min {
		if ferr := f.w.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (f flushing) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushing{Handler: f.Handler.WithAttrs(attrs), w: f.w, min: f.min}
}

func (f flushing) WithGroup(name string) slog.Handler {
	return flushing{Handler: f.Handler.WithGroup(name), w: f.w, min: f.min}
}
