package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/grpctest"
	"github.com/codename-gateway/codename-gateway/internal/poll"
	"github.com/codename-gateway/codename-gateway/server/codename"
)

// TestMaxConcurrentStreams checks that a connection carries no more than
// MaxConcurrentStreams calls at once: the server announces the limit, and
// a grpc-go client's stream past it waits until another one ends.
func TestMaxConcurrentStreams(t *testing.T) {
	const limit = 5
	s := startServer(t, Config{MaxConcurrentStreams: limit, StreamInterval: time.Hour})

	raw := dialRawH2(t, s.lis)
	if got, ok := raw.settings()[settingsMaxConcurrentStreams]; !ok || got != limit {
		t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS = %d (sent: %v), want %d", got, ok, limit)
	}

	ctx := t.Context()
	var cancels []context.CancelFunc
	for range limit {
		ctx, cancel := context.WithCancel(ctx)
		cancels = append(cancels, cancel)
		recvCategory(t, openStream(t, ctx, s.client, "space"))
	}
	// grpc-go's client holds a new stream back until the server lets it in.
	got := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, waitTimeout)
		defer cancel()
		name, err := firstName(ctx, s.client, "science")
		if err != nil {
			name = "error: " + err.Error()
		}
		got <- name
	}()
	// The first name of a stream goes out at once, so a stream that has
	// had none in this long was not let in.
	select {
	case name := <-got:
		t.Fatalf("stream %d of one connection got %q, want it to wait for one of the %d open ones to end", limit+1, name, limit)
	case <-time.After(300 * time.Millisecond):
	}
	cancels[0]()
	select {
	case name := <-got:
		if codename.CategoryOf(name) != "science" {
			t.Errorf("waiting stream got %q, want a science name", name)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("waiting stream got nothing within %v after another stream ended", waitTimeout)
	}
}

// firstName opens a stream for category and returns its first name.
func firstName(ctx context.Context, client codenamev1.CodenameCreatorClient, category string) (string, error) {
	stream, err := client.KeepGettingCodenames(ctx)
	if err != nil {
		return "", err
	}
	if err := stream.Send(&codenamev1.NameRequest{Category: category}); err != nil {
		return "", err
	}
	resp, err := stream.Recv()
	return resp.GetName(), err
}

// TestKeepaliveEnforcement checks the policy on client pings: pings no
// more often than the minimum interval are welcome even without a call
// open (the gateway pings between calls to notice a vanished replica),
// and a client that pings more often is told too_many_pings.
func TestKeepaliveEnforcement(t *testing.T) {
	const minPing = 100 * time.Millisecond
	s := startServer(t, Config{testMinPingInterval: minPing})
	raw := dialRawH2(t, s.lis)
	raw.settings()

	for i := range 4 {
		// Not a poll: the pings must be spaced beyond the minimum interval,
		// which is the behaviour under test.
		time.Sleep(minPing + minPing/2)
		raw.ping(uint64(i))
		if f := raw.readUntil(func(f h2frame) bool { return f.typ == frameGoAway || f.isPingAck(uint64(i)) }); f.typ == frameGoAway {
			t.Fatalf("ping %d, %v after the last one with no call open: GOAWAY %s, want a PING ack", i+1, minPing+minPing/2, f.goAway())
		}
	}

	// A GOAWAY comes after the ack of the ping that earned it, so one for
	// the last spaced ping would arrive before any ack of the burst.
	for i := range 5 {
		raw.ping(uint64(100 + i))
	}
	if f := raw.readUntil(func(f h2frame) bool { return f.typ == frameGoAway || f.isPingAck(100) }); f.typ == frameGoAway {
		t.Fatalf("GOAWAY %s for the pings %v apart with no call open, want none", f.goAway(), minPing+minPing/2)
	}
	f := raw.readUntil(func(f h2frame) bool { return f.typ == frameGoAway })
	if code, debug := f.goAwayParts(); code != errCodeEnhanceYourCalm || debug != "too_many_pings" {
		t.Errorf("GOAWAY after pings in a burst = %s, want ENHANCE_YOUR_CALM too_many_pings", f.goAway())
	}
}

// TestMaxConnectionAge checks that a connection in constant use is
// replaced once it is MaxConnectionAge old, without a call failing: the
// client is told to go (GOAWAY) and reconnects.
func TestMaxConnectionAge(t *testing.T) {
	s := startServer(t, Config{MaxConnectionAge: 200 * time.Millisecond, MaxConnectionAgeGrace: time.Second})
	conns := &dialer{lis: s.lis}
	client := codenamev1.NewCodenameCreatorClient(conns.client(t))
	if _, ok := poll.Until(waitTimeout, func() bool {
		if conns.dialed() >= 3 {
			return true
		}
		if _, err := client.GetCodename(t.Context(), &codenamev1.NameRequest{}); err != nil {
			t.Fatalf("GetCodename on connection %d: %v", conns.dialed(), err)
		}
		return false
	}); !ok {
		t.Fatalf("%d connections within %v, want a new one every MaxConnectionAge", conns.dialed(), waitTimeout)
	}
}

// TestMaxConnectionAgeGrace checks that a stream cannot keep its
// connection past MaxConnectionAge + MaxConnectionAgeGrace: it ends with
// UNAVAILABLE, the code on which clients reconnect, and a new stream works.
func TestMaxConnectionAgeGrace(t *testing.T) {
	const age, grace = 100 * time.Millisecond, 200 * time.Millisecond
	s := startServer(t, Config{MaxConnectionAge: age, MaxConnectionAgeGrace: grace, StreamInterval: time.Hour})
	start := time.Now()
	stream := openStream(t, t.Context(), s.client, "space")
	recvCategory(t, stream)
	_, err := stream.Recv()
	if status.Code(err) != codes.Unavailable {
		t.Errorf("stream past its connection's age and grace ended with %v, want Unavailable", err)
	}
	if took := time.Since(start); took < age+grace-age/10 {
		t.Errorf("stream ended after %v, want not before MaxConnectionAge + MaxConnectionAgeGrace = %v", took, age+grace)
	}
	recvCategory(t, openStream(t, t.Context(), s.client, "science"))
}

// TestMaxConnectionIdle checks that a connection without a call is closed
// after MaxConnectionIdle, and that the client reconnects for its next call.
func TestMaxConnectionIdle(t *testing.T) {
	const idle = 100 * time.Millisecond
	s := startServer(t, Config{MaxConnectionIdle: idle})
	conns := &dialer{lis: s.lis}
	client := codenamev1.NewCodenameCreatorClient(conns.client(t))
	if _, err := client.GetCodename(t.Context(), &codenamev1.NameRequest{}); err != nil {
		t.Fatalf("GetCodename: %v", err)
	}
	select {
	case <-conns.firstClosed():
	case <-time.After(20 * idle):
		t.Fatalf("idle connection still open after %v, want it closed after MaxConnectionIdle %v", 20*idle, idle)
	}
	if _, err := client.GetCodename(t.Context(), &codenamev1.NameRequest{}); err != nil {
		t.Fatalf("GetCodename after the idle connection was closed: %v", err)
	}
	if got := conns.dialed(); got != 2 {
		t.Errorf("%d connections, want 2", got)
	}
}

// dialer connects clients to a bufconn listener, and counts and tracks the
// connections.
type dialer struct {
	lis   *bufconn.Listener
	mu    sync.Mutex
	conns []*closeConn
}

func (d *dialer) client(t *testing.T) *grpc.ClientConn {
	t.Helper()
	return grpctest.Dial(t, d.lis, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		c, err := d.lis.DialContext(ctx)
		if err != nil {
			return nil, err
		}
		cc := &closeConn{Conn: c, closed: make(chan struct{})}
		d.mu.Lock()
		d.conns = append(d.conns, cc)
		d.mu.Unlock()
		return cc, nil
	}))
}

func (d *dialer) dialed() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.conns)
}

// firstClosed is closed when the first connection is. There must be one.
func (d *dialer) firstClosed() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conns[0].closed
}

// closeConn is a net.Conn that tells when the client has closed it, which
// grpc-go does when the server ends the connection.
type closeConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *closeConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// HTTP/2 as RFC 9113 numbers it, for what a grpc-go client will not do.
const (
	frameSettings = 0x4
	framePing     = 0x6
	frameGoAway   = 0x7

	flagAck = 0x1

	settingsMaxConcurrentStreams = 0x3
	errCodeEnhanceYourCalm       = 0xb
)

// rawH2 is a client end of an HTTP/2 connection, written frame by frame.
type rawH2 struct {
	t    *testing.T
	conn net.Conn
}

type h2frame struct {
	typ, flags byte
	stream     uint32
	payload    []byte
}

func dialRawH2(t *testing.T, lis *bufconn.Listener) *rawH2 {
	t.Helper()
	conn, err := lis.DialContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(waitTimeout))
	c := &rawH2{t: t, conn: conn}
	if _, err := io.WriteString(conn, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	c.write(h2frame{typ: frameSettings})
	return c
}

func (c *rawH2) write(f h2frame) {
	c.t.Helper()
	hdr := make([]byte, 9, 9+len(f.payload))
	hdr[0], hdr[1], hdr[2] = byte(len(f.payload)>>16), byte(len(f.payload)>>8), byte(len(f.payload))
	hdr[3], hdr[4] = f.typ, f.flags
	binary.BigEndian.PutUint32(hdr[5:], f.stream)
	if _, err := c.conn.Write(append(hdr, f.payload...)); err != nil {
		c.t.Fatalf("write frame: %v", err)
	}
}

func (c *rawH2) read() h2frame {
	c.t.Helper()
	var hdr [9]byte
	if _, err := io.ReadFull(c.conn, hdr[:]); err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	f := h2frame{typ: hdr[3], flags: hdr[4], stream: binary.BigEndian.Uint32(hdr[5:]) &^ (1 << 31)}
	f.payload = make([]byte, int(hdr[0])<<16|int(hdr[1])<<8|int(hdr[2]))
	if _, err := io.ReadFull(c.conn, f.payload); err != nil {
		c.t.Fatalf("read frame payload: %v", err)
	}
	return f
}

// readUntil reads frames until one for which want is true, and returns it.
func (c *rawH2) readUntil(want func(h2frame) bool) h2frame {
	c.t.Helper()
	for {
		if f := c.read(); want(f) {
			return f
		}
	}
}

// settings reads the server's SETTINGS frame, acknowledges it, and
// returns its parameters.
func (c *rawH2) settings() map[uint16]uint32 {
	c.t.Helper()
	f := c.readUntil(func(f h2frame) bool { return f.typ == frameSettings && f.flags&flagAck == 0 })
	c.write(h2frame{typ: frameSettings, flags: flagAck})
	params := make(map[uint16]uint32)
	for p := f.payload; len(p) >= 6; p = p[6:] {
		params[binary.BigEndian.Uint16(p)] = binary.BigEndian.Uint32(p[2:])
	}
	return params
}

func (c *rawH2) ping(data uint64) {
	c.t.Helper()
	c.write(h2frame{typ: framePing, payload: binary.BigEndian.AppendUint64(nil, data)})
}

func (f h2frame) isPingAck(data uint64) bool {
	return f.typ == framePing && f.flags&flagAck != 0 && bytes.Equal(f.payload, binary.BigEndian.AppendUint64(nil, data))
}

// goAwayParts returns the error code and debug data of a GOAWAY frame.
func (f h2frame) goAwayParts() (code uint32, debug string) {
	if len(f.payload) < 8 {
		return 0, ""
	}
	return binary.BigEndian.Uint32(f.payload[4:]), string(f.payload[8:])
}

func (f h2frame) goAway() string {
	code, debug := f.goAwayParts()
	return fmt.Sprintf("code %#x %q", code, debug)
}
