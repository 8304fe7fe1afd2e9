package e2e

import (
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestHostileGlitchesCloseTheConnection: a client that resets every stream
// it opens, as fast as it can (HTTP/2 rapid reset), costs the edge work for
// nothing. HAProxy 3.2 counts each such reset as a "glitch" and closes the
// connection (GOAWAY ENHANCE_YOUR_CALM) once it has made
// tune.h2.fe.glitches-threshold of them (measured: the client had written
// 600 to 1000 resets when the GOAWAY came). 3.0 has the threshold but
// does not count rapid resets as glitches, and 2.6 has neither: there the
// connection lives on, its streams still bounded by the per-connection
// stream limit. Either way the
// client can connect again and be served, and nobody else notices (that
// part is TestHostileRequestsDoNotHurtOthers).
func TestHostileGlitchesCloseTheConnection(t *testing.T) {
	s := shared(t)
	const resets = 2000
	c, err := dialH2Raw("", s.cfg.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// What HAProxy says comes back on a reader of its own, so that a full
	// socket buffer cannot stall the writer.
	ended := make(chan error, 1)
	go func() {
		_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		for {
			f, err := c.fr.ReadFrame()
			if err != nil {
				ended <- err
				return
			}
			if g, ok := f.(*http2.GoAwayFrame); ok {
				ended <- http2.ConnectionError(g.ErrCode)
				return
			}
		}
	}()
	sent := 0
	for ; sent < resets; sent++ {
		id, err := c.request("GET", "/v1/codenames:stream?category=space", false, [2]string{"accept", "text/event-stream"})
		if err != nil || c.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			break
		}
	}

	if haproxyUnderTest(t).atLeast(3, 2) {
		select {
		case err := <-ended:
			var code http2.ConnectionError
			if !errors.As(err, &code) && !errors.Is(err, io.EOF) {
				t.Errorf("the connection ended with %v, want GOAWAY or a close", err)
			}
			t.Logf("HAProxy ended the connection (%v) after %d of %d resets were written", err, sent, resets)
		case <-time.After(10 * time.Second):
			t.Fatalf("the connection outlived %d rapid resets by 10 s", sent)
		}
	} else {
		if sent < resets {
			t.Fatalf("HAProxy %s refused the connection after %d resets; it does not count them", haproxyUnderTest(t).version, sent)
		}
		select {
		case err := <-ended:
			t.Fatalf("HAProxy %s ended the connection: %v", haproxyUnderTest(t).version, err)
		case <-time.After(time.Second):
		}
		t.Logf("HAProxy %s took %d rapid resets on one connection", haproxyUnderTest(t).version, sent)
	}

	// The same client, on a new connection, is served.
	c2, err := dialH2Raw("", s.cfg.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if a, err := c2.do("GET", "/v1/codename?category=space"); err != nil || a.status != http.StatusOK {
		t.Errorf("a new connection after the resets: %+v %v, want 200", a, err)
	}
}
