package e2e

import (
	"context"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/poll"
)

// TestServerDrainsOnSIGTERM stops the gRPC server with SIGTERM while a
// stream is open through HAProxy: the stream must end with UNAVAILABLE (a
// status a client can act on by reconnecting), and the server must exit
// cleanly rather than wait forever for the stream.
func TestServerDrainsOnSIGTERM(t *testing.T) {
	s := start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	stream := openCodenames(t, ctx, s.grpcClient(t, true), "space")
	expectCategory(t, stream, "space", 2)

	server := s.Process("server-1")
	if err := server.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := stream.Recv()
		if err == nil {
			continue
		}
		if got := status.Code(err); got != codes.Unavailable {
			t.Errorf("stream ended with %v, want Unavailable", err)
		}
		break
	}
	select {
	case <-server.Done():
		if err := server.Err(); err != nil {
			t.Errorf("server exited with %v, want a clean exit", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("server still running 15 s after SIGTERM")
	}

	// With the server gone, gRPC callers get UNAVAILABLE, something to
	// retry, and /healthz (which asks the gRPC server) reports the outage
	// as JSON, whether the gateway answers or HAProxy has marked it down.
	_, err := s.grpcClient(t, true).GetCodename(ctx, &codenamev1.NameRequest{})
	if got := status.Code(err); got != codes.Unavailable {
		t.Errorf("GetCodename with the server gone: %v, want Unavailable", err)
	}
	resp, b := do(t, transports[1].client(t, s), "GET", s.httpsURL("/healthz"), "", "")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), `"code":14`) {
		t.Errorf("/healthz with the server gone: %s %s, want 503 with code 14 (UNAVAILABLE)", resp.Status, b)
	}
}

// drainProcess sends SIGTERM to the child name, waits until healthURL (the
// /healthz that HAProxy's checks read for it) says 503, then until the
// process has exited cleanly, within 20 s, and then until more calls of
// load have succeeded after it.
func drainProcess(t *testing.T, s *system, name, healthURL string, load *load, more int64) {
	t.Helper()
	victim := s.Process(name)
	if err := victim.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	poll.For(t, name+"'s "+healthURL+" to say NOT_SERVING", 10*time.Second, func() error {
		return answers(healthURL, http.StatusServiceUnavailable)
	})
	select {
	case <-victim.Done():
		if err := victim.Err(); err != nil {
			t.Errorf("%s exited with %v, want success", name, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not exit", name)
	}
	n := load.ok.Load()
	poll.For(t, "calls after the drain of "+name, 10*time.Second, func() error { return okPast(n+more, load) })
}
