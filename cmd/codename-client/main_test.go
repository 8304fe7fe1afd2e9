package main

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// call is what the fake server saw of one call.
type call struct {
	method string
	md     metadata.MD
}

// fakeServer answers every method, whatever its name, with "Name <category>"
// for each request, and records the calls, so that the tests can see what
// the client sent and to which method.
func fakeServer(t *testing.T) (addr string, calls func() []call) {
	t.Helper()
	var (
		mu   sync.Mutex
		seen []call
	)
	handler := func(_ any, stream grpc.ServerStream) error {
		method, _ := grpc.MethodFromServerStream(stream)
		md, _ := metadata.FromIncomingContext(stream.Context())
		mu.Lock()
		seen = append(seen, call{method, md})
		mu.Unlock()
		for {
			req := new(codenamev1.NameRequest)
			if err := stream.RecvMsg(req); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			if err := stream.SendMsg(&codenamev1.NameResult{Name: "Name " + req.GetCategory()}); err != nil {
				return err
			}
		}
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnknownServiceHandler(handler))
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), func() []call {
		mu.Lock()
		defer mu.Unlock()
		return append([]call(nil), seen...)
	}
}

func runClient(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr strings.Builder
	err := run(t.Context(), append([]string{"codename-client"}, args...), func(string) string { return "" }, &stdout, &stderr)
	return stdout.String(), err
}

func TestClient(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantOut    string
		wantMethod string
		wantMD     map[string]string
	}{
		{
			name:       "one codename",
			args:       []string{"-category", "science"},
			wantOut:    "Name science\n",
			wantMethod: "/codename.v1.CodenameCreator/GetCodename",
		},
		{
			name:       "metadata",
			args:       []string{"-H", "x-request-id: demo-1", "-H", "X-Team:blue"},
			wantOut:    "Name animals\n",
			wantMethod: "/codename.v1.CodenameCreator/GetCodename",
			wantMD:     map[string]string{"x-request-id": "demo-1", "x-team": "blue"},
		},
		{
			name:       "legacy method name",
			args:       []string{"-legacy", "-category", "space"},
			wantOut:    "Name space\n",
			wantMethod: "/CodenameCreator/GetCodename",
		},
		{
			name:       "stream switching category",
			args:       []string{"-stream", "-category", "animals,science", "-switch-every", "1ms", "-n", "2"},
			wantOut:    "Name animals\nName science\n",
			wantMethod: "/codename.v1.CodenameCreator/KeepGettingCodenames",
		},
		{
			name:       "legacy stream",
			args:       []string{"-legacy", "-stream", "-n", "1"},
			wantOut:    "Name animals\n",
			wantMethod: "/CodenameCreator/KeepGettingCodenames",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, calls := fakeServer(t)
			got, err := runClient(t, append([]string{"-plaintext", "-addr", addr}, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.wantOut {
				t.Errorf("printed %q, want %q", got, tt.wantOut)
			}
			c := calls()
			if len(c) != 1 {
				t.Fatalf("server saw %d calls, want 1", len(c))
			}
			if c[0].method != tt.wantMethod {
				t.Errorf("method = %q, want %q", c[0].method, tt.wantMethod)
			}
			for k, want := range tt.wantMD {
				if got := c[0].md.Get(k); len(got) != 1 || got[0] != want {
					t.Errorf("metadata %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestClientBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-H", "no-colon"},
		{"-ca", "/nonexistent/ca.pem"},
	} {
		if _, err := runClient(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
