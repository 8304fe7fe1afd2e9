package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Raw clients send requests exactly as written: the paths, headers and
// frames that client libraries clean up or never send, which is what a
// hostile client sends.

// rawAnswer is what came back for one raw request.
type rawAnswer struct {
	status int
	body   string
}

// dialFrom dials addr over TCP from the local address from (a loopback
// address such as 127.0.0.2; empty means any).
func dialFrom(from, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	return d.Dial("tcp", addr)
}

// h1Raw sends request, written out whole, on a new connection to addr and
// reads one response.
func h1Raw(addr, request string) (rawAnswer, error) {
	conn, err := dialFrom("", addr)
	if err != nil {
		return rawAnswer{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		return rawAnswer{}, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return rawAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return rawAnswer{resp.StatusCode, string(b)}, err
}

// h2Raw is an HTTP/2 connection (h2c prior knowledge) driven frame by frame.
type h2Raw struct {
	conn net.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	hbuf bytes.Buffer
	dec  *hpack.Decoder
	next uint32
}

// dialH2Raw opens an HTTP/2 connection to addr from the local address from
// (empty: any) and sends the preface and an empty SETTINGS frame.
func dialH2Raw(from, addr string) (*h2Raw, error) {
	conn, err := dialFrom(from, addr)
	if err != nil {
		return nil, err
	}
	c := &h2Raw{conn: conn, fr: http2.NewFramer(conn, conn), next: 1}
	c.enc = hpack.NewEncoder(&c.hbuf)
	c.dec = hpack.NewDecoder(4096, nil)
	c.fr.ReadMetaHeaders = c.dec
	if _, err := io.WriteString(conn, http2.ClientPreface); err == nil {
		err = c.fr.WriteSettings()
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *h2Raw) Close() error { return c.conn.Close() }

// request sends HEADERS for method and path (written as given) with the
// extra header fields, ending the stream unless open, and returns the
// stream's ID.
func (c *h2Raw) request(method, path string, open bool, fields ...[2]string) (uint32, error) {
	c.hbuf.Reset()
	for _, f := range append([][2]string{{":method", method}, {":scheme", "http"}, {":authority", "localhost"}, {":path", path}}, fields...) {
		if err := c.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			return 0, err
		}
	}
	id := c.next
	c.next += 2
	return id, c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndStream: !open, EndHeaders: true})
}

// answer reads frames until stream id ends and returns its status and
// body; it fails if the stream is reset or the connection goes away.
func (c *h2Raw) answer(id uint32) (rawAnswer, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var a rawAnswer
	var body strings.Builder
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return a, err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = c.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = c.fr.WritePing(true, f.Data)
			}
		case *http2.GoAwayFrame:
			return a, fmt.Errorf("GOAWAY %v", f.ErrCode)
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				return a, fmt.Errorf("RST_STREAM %v", f.ErrCode)
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == id && a.status == 0 {
				_, _ = fmt.Sscan(f.PseudoValue("status"), &a.status)
			}
			if f.StreamID == id && f.StreamEnded() {
				a.body = body.String()
				return a, nil
			}
		case *http2.DataFrame:
			if f.StreamID == id {
				body.Write(f.Data())
				if n := uint32(len(f.Data())); n > 0 {
					_ = c.fr.WriteWindowUpdate(0, n)
					_ = c.fr.WriteWindowUpdate(id, n)
				}
				if f.StreamEnded() {
					a.body = body.String()
					return a, nil
				}
			}
		}
	}
}

// do sends one request on c and waits for its answer.
func (c *h2Raw) do(method, path string, fields ...[2]string) (rawAnswer, error) {
	id, err := c.request(method, path, false, fields...)
	if err != nil {
		return rawAnswer{}, err
	}
	return c.answer(id)
}

// drain reads and discards frames until the connection ends or d passes,
// answering nothing: for hostile connections whose answers do not matter.
func (c *h2Raw) drain(d time.Duration) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	for {
		if _, err := c.fr.ReadFrame(); err != nil {
			return
		}
	}
}

// TestRawH2Answers: the raw HTTP/2 client that the hostile tests use gets
// a plain answer to a plain request, so its refusals elsewhere mean
// something.
func TestRawH2Answers(t *testing.T) {
	s := shared(t)
	c, err := dialH2Raw("", s.cfg.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := c.do("GET", "/v1/codename?category=space")
	if err != nil || a.status != http.StatusOK || !strings.Contains(a.body, `"name"`) {
		t.Fatalf("raw HTTP/2 GET: %+v %v, want 200 with a name", a, err)
	}
}
