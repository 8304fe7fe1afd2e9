package stack

import (
	"bytes"
	"io"
	"sync"
)

// prefixWriter writes each complete line it receives to w with a prefix,
// so that the output of several children stays readable when interleaved.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix []byte
	buf    []byte
	// drop, if set, says which lines not to write.
	drop func(line []byte) bool
}

func newPrefixWriter(w io.Writer, name string) *prefixWriter {
	return &prefixWriter{w: w, prefix: []byte(name + " | ")}
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		raw := p.buf[:i]
		line := append(append([]byte{}, p.prefix...), p.buf[:i+1]...)
		p.buf = p.buf[i+1:]
		if p.drop != nil && p.drop(raw) {
			continue
		}
		if _, err := p.w.Write(line); err != nil {
			return len(b), nil // output is best effort; never block a child
		}
	}
	return len(b), nil
}

// Flush writes a final line that had no newline.
func (p *prefixWriter) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		_, _ = p.w.Write(append(append(append([]byte{}, p.prefix...), p.buf...), '\n'))
		p.buf = nil
	}
}
