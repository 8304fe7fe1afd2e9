package e2e

import (
	"bufio"
	"context"
	"testing"
	"time"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/poll"
)

// TestDepartureForwarded: however a client leaves a stream that has
// nothing to say for an hour (codenames an hour apart), the server's
// handler ends within a second: HAProxy passes a gRPC client's RST_STREAM
// or closed connection on to the server, and a REST client's closed
// connection on to the gateway, which cancels its call. The exception, on
// every version: an SSE request over HTTP/1.1 is complete once its
// headers are in, and HAProxy does not watch the client's side of it until
// it has something to write, so the gateway learns of the departure at
// its next writes, the heartbeats (15 s apart by default, 1 s here; the
// first write after the close may still be taken by the kernel, the next
// one fails). 3.1 and later
// also log how a stream ended: a client's cancel as aborted=1 with its
// RST_STREAM code, 8 (CANCEL).
func TestDepartureForwarded(t *testing.T) {
	const heartbeat = time.Second
	s := start(t, withEnv("CODENAME_STREAM_INTERVAL=1h", "CODENAME_SSE_HEARTBEAT="+heartbeat.String()))
	server := newMetricsProbe(t, s.cfg.GRPCAdminAddrs[0])
	b := haproxyUnderTest(t)
	for _, tt := range []struct {
		name string
		// open starts a stream and returns once its first codename came,
		// with the way to leave it.
		open func(t *testing.T) (leave func())
		// within is how soon the server's handler must end.
		within time.Duration
	}{
		{"gRPC cancel", func(t *testing.T) func() {
			ctx, cancel := context.WithCancel(t.Context())
			st := openCodenames(t, ctx, s.grpcClient(t, false), "space")
			if _, err := st.Recv(); err != nil {
				t.Fatal(err)
			}
			return cancel
		}, time.Second},
		{"gRPC connection closed", func(t *testing.T) func() {
			conn := s.grpcConn(t, true)
			st := openCodenames(t, t.Context(), codenamev1.NewCodenameCreatorClient(conn), "space")
			if _, err := st.Recv(); err != nil {
				t.Fatal(err)
			}
			return func() { conn.Close() }
		}, time.Second},
		{"NDJSON connection closed", func(t *testing.T) func() {
			conn, resp := openNDJSONStream(t, s.cfg.HTTPAddr, `{"category":"space"}`)
			if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
				t.Fatal(err)
			}
			return func() { conn.Close() }
		}, time.Second},
		{"SSE connection closed", func(t *testing.T) func() {
			conn, events := openSSEStream(t, s.cfg.HTTPAddr, "space")
			readEvents(t, events, 1)
			return func() { conn.Close() }
		}, 2*heartbeat + time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			leave := tt.open(t)
			poll.For(t, "the server to hold the stream", 10*time.Second, server.gauge("codename_open_streams", 1))
			leave()
			took, ended := poll.Until(tt.within, func() bool { return server.value("codename_open_streams") == 0 })
			t.Logf("HAProxy %s: the server's handler ended %v after the client left", b.version, took.Round(time.Millisecond))
			if !ended {
				t.Fatalf("the server still holds the stream %v after its client left", tt.within)
			}
		})
	}
	if b.atLeast(3, 1) {
		s.waitLine(t, "haproxy", "/codename.v1.CodenameCreator/KeepGettingCodenames", " end ", " aborted=1/0 rst=8/")
	}
}
