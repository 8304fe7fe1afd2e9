package server

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"
)

// splitListener divides the connections of one listener by their first
// bytes: gRPC (the HTTP/2 client preface, "PRI * HTTP/2.0...") and plain
// HTTP/1.1, which carries health checks. One port per replica is then
// enough for HAProxy's traffic and its health checks: HAProxy 2.6 cannot
// send a gRPC health request, but it can send an HTTP/1.1 GET to the same
// address.
type splitListener struct {
	lis         net.Listener
	grpc, other *chanListener
}

// sniffTimeout bounds how long a new connection may take to send the bytes
// that tell its protocol, so that idle connections cannot pile up.
const sniffTimeout = 10 * time.Second

func split(lis net.Listener) (grpc, other net.Listener) {
	s := &splitListener{lis: lis, grpc: newChanListener(lis.Addr()), other: newChanListener(lis.Addr())}
	go s.acceptLoop()
	return s.grpc, s.other
}

// acceptLoop hands every connection of lis to route. A temporary Accept
// error, such as running out of file descriptors, is retried after a pause
// that grows to a second, as net/http and grpc-go do on their own
// listeners: ending the loop would leave both servers retrying forever on
// listeners that never deliver again. Any other error ends both listeners.
func (s *splitListener) acceptLoop() {
	var pause time.Duration
	for {
		conn, err := s.lis.Accept()
		if err != nil {
			if te, ok := err.(interface{ Temporary() bool }); !ok || !te.Temporary() {
				s.grpc.fail(err)
				s.other.fail(err)
				return
			}
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			t := time.NewTimer(pause)
			select {
			case <-t.C:
				continue
			case <-s.grpc.done: // the servers are stopping: no need to wait for lis
			case <-s.other.done:
			}
			t.Stop()
			s.grpc.Close()
			s.other.Close()
			return
		}
		pause = 0
		go s.route(conn)
	}
}

// route reads just enough of conn to tell "PRI" (the HTTP/2 preface) from
// an HTTP/1.1 method, then hands conn, with those bytes put back, to the
// listener for its protocol.
func (s *splitListener) route(conn net.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(sniffTimeout))
	const h2 = "PRI"
	var seen []byte
	buf := make([]byte, len(h2))
	for len(seen) < len(h2) && bytes.HasPrefix([]byte(h2), seen) {
		n, err := conn.Read(buf[:len(h2)-len(seen)])
		seen = append(seen, buf[:n]...)
		if err != nil {
			conn.Close()
			return
		}
	}
	_ = conn.SetReadDeadline(time.Time{})
	c := &replayConn{Conn: conn, r: io.MultiReader(bytes.NewReader(seen), conn)}
	if string(seen) == h2 {
		s.grpc.deliver(c)
	} else {
		s.other.deliver(c)
	}
}

// replayConn is a connection whose first bytes were already read once.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// chanListener is a net.Listener fed by splitListener.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	err   error
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *chanListener) fail(err error) {
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
	l.Close()
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
