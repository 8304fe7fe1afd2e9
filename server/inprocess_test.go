package server

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// TestInProcessInvoke: an in-process call answers as a call over the
// network would, for what only a transport would otherwise check, and it
// is served through the drain, until the grpc.Server has stopped.
func TestInProcessInvoke(t *testing.T) {
	s := newServer(Config{MaxRecvMsgSize: 64})
	c, err := s.inProcessConn()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const method = "/codename.v1.CodenameCreator/GetCodename"
	call := func(ctx context.Context, method string, req *codenamev1.NameRequest) codes.Code {
		t.Helper()
		err := c.Invoke(ctx, method, req, new(codenamev1.NameResult))
		return status.Code(err)
	}
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tt := range []struct {
		name   string
		ctx    context.Context
		method string
		req    *codenamev1.NameRequest
		want   codes.Code
	}{
		{"a call", t.Context(), method, &codenamev1.NameRequest{Category: "space"}, codes.OK},
		{"a bad category", t.Context(), method, &codenamev1.NameRequest{Category: "nonsense"}, codes.InvalidArgument},
		{"an unknown method", t.Context(), "/codename.v1.CodenameCreator/Nothing", &codenamev1.NameRequest{}, codes.Unimplemented},
		{"a message over the limit", t.Context(), method, &codenamev1.NameRequest{Category: strings.Repeat("x", 100)}, codes.ResourceExhausted},
		{"a canceled caller", canceled, method, &codenamev1.NameRequest{}, codes.Canceled},
	} {
		if got := call(tt.ctx, tt.method, tt.req); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	close(s.draining)
	if got := call(t.Context(), method, &codenamev1.NameRequest{}); got != codes.OK {
		t.Errorf("a call while the server drains: %v, want OK", got)
	}
	close(s.stopped)
	if got := call(t.Context(), method, &codenamev1.NameRequest{}); got != codes.Unavailable {
		t.Errorf("a call once the server has stopped: %v, want Unavailable", got)
	}
	s.gs.Stop()
}
