package e2e

import (
	"net"
	"sync"
	"testing"
)

// fakeBackend is a TCP listener on loopback that stands where a backend
// stands, for HAProxy started alone (edgeOnly): a broken backend, or a
// front for another project's server. It is not a system, so start does
// not make it; start points HAProxy at it. Every connection it accepted
// or tracked is closed, and every handler waited for, when the test ends.
type fakeBackend struct {
	lis      net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	accepts  int
	shutdown bool
}

// newFakeBackend listens and calls answer with each connection accepted.
func newFakeBackend(t testing.TB, answer func(net.Conn)) *fakeBackend {
	t.Helper()
	f := listenFake(t)
	f.serve(answer)
	return f
}

// listenFake listens; serve then starts answering.
func listenFake(t testing.TB) *fakeBackend {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeBackend{lis: lis, conns: map[net.Conn]struct{}{}}
	t.Cleanup(f.close)
	return f
}

func (f *fakeBackend) serve(answer func(net.Conn)) {
	f.wg.Go(func() {
		for {
			c, err := f.lis.Accept()
			if err != nil || !f.track(c) {
				return
			}
			f.mu.Lock()
			f.accepts++
			f.mu.Unlock()
			f.wg.Go(func() {
				defer f.untrack(c)
				answer(c)
			})
		}
	})
}

func (f *fakeBackend) addr() string { return f.lis.Addr().String() }

// accepted is how many connections it has accepted.
func (f *fakeBackend) accepted() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accepts
}

// track remembers c so that close can end it; false once closed.
func (f *fakeBackend) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.shutdown {
		c.Close()
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *fakeBackend) untrack(c net.Conn) {
	c.Close()
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

func (f *fakeBackend) close() {
	f.lis.Close()
	f.mu.Lock()
	f.shutdown = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}
