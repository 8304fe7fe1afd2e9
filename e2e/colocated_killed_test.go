package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/poll"
	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// TestColocatedReplicaKilledMidStream: the one difference in what a REST
// client sees between the gateway modes. Separate, a gateway outlives its
// server and ends a REST stream with an error line, code 14
// (TestBackendKilledMidStream); co-located, the gateway dies with the
// server, and the client learns of it only from HAProxy. Over HTTP/1.1 the
// body breaks (no last chunk); over HTTP/2, HAProxy 3.x resets the stream,
// but 2.6 ends it as if the server had finished it, which no client can
// tell from a normal end. No stream hangs, and new calls fail fast.
func TestColocatedReplicaKilledMidStream(t *testing.T) {
	s := start(t, gatewayMode(stack.Colocated))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	type ended struct {
		tp   transport
		last string
		err  error
	}
	endings := make(chan ended, len(transports))
	for _, tp := range transports {
		body, send := io.Pipe()
		defer send.Close()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, tp.url(s, "/v1/codenames:stream"), body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		go func() { _, _ = io.WriteString(send, `{"category":"animals"}`+"\n") }()
		resp, err := tp.client(t, s).Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tp.name, err)
		}
		defer resp.Body.Close()
		lines := bufio.NewScanner(resp.Body)
		if !lines.Scan() {
			t.Fatalf("%s: no first line: %v", tp.name, lines.Err())
		}
		go func() {
			var last string
			for lines.Scan() {
				last = lines.Text()
			}
			endings <- ended{tp, last, lines.Err()}
		}()
	}

	victim := s.Process("server-1")
	if err := victim.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	b := haproxyUnderTest(t)
	for range transports {
		select {
		case e := <-endings:
			t.Logf("%s: ended after %q, read error %v", e.tp.name, e.last, e.err)
			var l streamLine
			if json.Unmarshal([]byte(e.last), &l) == nil && l.Error != nil {
				t.Errorf("%s: an error line %s from a gateway that was killed", e.tp.name, e.last)
			}
			cleanEndExpected := e.tp.proto == 2 && !b.atLeast(3, 0)
			switch {
			case cleanEndExpected && e.err != nil:
				t.Errorf("%s: %v; HAProxy %s used to end this stream cleanly (DESIGN.md): if it now tells the client, update this test and the README", e.tp.name, e.err, b.version)
			case !cleanEndExpected && e.err == nil:
				t.Errorf("%s: the stream ended cleanly, want a broken body or a reset stream", e.tp.name)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a REST stream is still open 5 s after its replica was killed")
		}
	}

	<-victim.Done()
	if _, ok := poll.Until(5*time.Second, func() bool {
		return s.serverState(t, "be_grpc", "grpc1", "DOWN") && s.serverState(t, "be_rest", "gw1", "DOWN") && s.serverState(t, "be_rest_stream", "gw1", "DOWN")
	}); !ok {
		t.Error("HAProxy has not marked the killed replica's listeners down")
	}
	checkFailsFast(t, s, time.Second)
}
