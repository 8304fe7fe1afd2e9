package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// TestReadGRPCWeb checks that only a whole, successful gRPC-Web answer
// yields a codename: the benchmark counts the load's answers as calls only
// after this check has passed on real ones.
func TestReadGRPCWeb(t *testing.T) {
	msg, err := proto.Marshal(&codenamev1.NameResult{Name: "Tireless Triton"})
	if err != nil {
		t.Fatal(err)
	}
	ok := grpcFrame(0x80, []byte("grpc-status: 0\r\ngrpc-message: \r\n"))
	web := http.Header{"Content-Type": {"application/grpc-web+proto"}}
	cases := []struct {
		name    string
		header  http.Header
		body    []byte
		wantErr string
	}{
		{"message and status 0", web, append(grpcFrame(0, msg), ok...), ""},
		{"status 0 in trailers without a final CRLF", web, append(grpcFrame(0, msg), grpcFrame(0x80, []byte("Grpc-Status: 0"))...), ""},
		{"an error in the trailers", web, grpcFrame(0x80, []byte("grpc-status: 3\r\ngrpc-message: unknown category\r\n")), `grpc-status "3"`},
		{"an error in the headers alone", http.Header{"Content-Type": {"application/grpc-web+proto"}, "Grpc-Status": {"14"}}, nil, "grpc-status 14"},
		{"no trailers", web, grpcFrame(0, msg), "no trailer frame"},
		{"status 0 and no message", web, ok, "no message"},
		{"two messages", web, append(append(grpcFrame(0, msg), grpcFrame(0, msg)...), ok...), "more than one message"},
		{"a compressed message", web, append(grpcFrame(1, msg), ok...), "compressed"},
		{"a frame cut short", web, grpcFrame(0, msg)[:4], "cut short"},
		{"a frame longer than the body", web, grpcFrame(0, msg)[:8], "frame of"},
		{"a frame after the trailers", web, append(append(grpcFrame(0, msg), ok...), grpcFrame(0, msg)...), "after the trailers"},
		{"a REST answer", http.Header{"Content-Type": {"application/json"}}, []byte(`{"name":"Tireless Triton"}`), "not gRPC-Web"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := readGRPCWeb(c.header, c.body)
			if c.wantErr == "" {
				if err != nil || res.GetName() != "Tireless Triton" {
					t.Fatalf("readGRPCWeb = %v, %v; want the name", res, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("readGRPCWeb error = %v, want one saying %q", err, c.wantErr)
			}
		})
	}
}

// TestBrowserUnaryRows starts the system and checks, through a real
// HAProxy and gateway, that the gRPC-Web and Connect requests the load
// sends get codenames back (and that the checks fail where no gateway
// answers them: a misrouted request must not pass for a call), then that
// the unary step produces their rows.
func TestBrowserUnaryRows(t *testing.T) {
	root := longTestRoot(t, "starts HAProxy, a server and a gateway")
	ctx := t.Context()
	work := t.TempDir()
	binDir := filepath.Join(work, "bin")
	if err := build(ctx, root, binDir); err != nil {
		t.Fatal(err)
	}
	sys, err := startSystem(ctx, binDir, filepath.Join(work, "state"), filepath.Join(root, "haproxy", "haproxy.cfg"), "CODENAME_STREAM_INTERVAL=0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sys.stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	body, err := writeBodies(work)
	if err != nil {
		t.Fatal(err)
	}
	edge := "http://" + sys.proxyAddr() + grpcPath
	if err := checkGRPCWeb(ctx, edge, body.grpc); err != nil {
		t.Errorf("gRPC-Web through HAProxy: %v", err)
	}
	if err := checkConnect(ctx, edge, body.json); err != nil {
		t.Errorf("Connect JSON through HAProxy: %v", err)
	}
	// The gRPC server itself does not speak gRPC-Web, and the REST route
	// answers JSON of its own: neither may pass.
	misrouted := []struct {
		name  string
		check func() error
	}{
		{"gRPC-Web straight to the gRPC server", func() error { return checkGRPCWeb(ctx, "http://"+sys.grpcAddr()+grpcPath, body.grpc) }},
		{"gRPC-Web to the REST route", func() error { return checkGRPCWeb(ctx, "http://"+sys.proxyAddr()+"/v1/codename", body.grpc) }},
		{"Connect JSON straight to the gRPC server", func() error { return checkConnect(ctx, "http://"+sys.grpcAddr()+grpcPath, body.json) }},
	}
	for _, m := range misrouted {
		if err := m.check(); err == nil {
			t.Errorf("%s passed the check", m.name)
		} else {
			t.Logf("%s: refused: %v", m.name, err)
		}
	}
	if t.Failed() {
		t.Logf("stack output:\n%s", sys.log.String())
		return
	}

	// The stack stands in for the one with TLS backends and the co-located
	// one too: this checks the rows, not what TLS or the mode costs
	// (TestSmoke runs the real three).
	figs, details, err := measureUnary(ctx, sys, sys, sys, unaryLoad{conns: 1, streams: 4}, plan{rounds: 1, duration: 300 * time.Millisecond}, work)
	if err != nil {
		t.Fatalf("measureUnary: %v\n%s", err, sys.log.String())
	}
	got := map[string]figure{}
	for _, f := range figs {
		got[f.name] = f
	}
	for _, name := range []string{figGRPCWebRatio, figGRPCWebCPU, figConnectRatio, figConnectCPU} {
		f, ok := got[name]
		switch {
		case !ok || !f.measured:
			t.Errorf("no measured row %q", name)
		case !(f.value > 0):
			t.Errorf("%s = %v, want more than 0", name, f.value)
		}
	}
	if !strings.Contains(strings.Join(details, "\n"), "gRPC-Web") {
		t.Errorf("no detail names gRPC-Web:\n%s", strings.Join(details, "\n"))
	}
}
