package server

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/server/codename"
)

func TestGetCodename(t *testing.T) {
	s := startServer(t, Config{})
	tests := []struct {
		name     string
		category string
		want     string
	}{
		{name: "lower case", category: "science", want: "science"},
		{name: "upper case", category: "SPACE", want: "space"},
		{name: "surrounding space", category: " Animals ", want: "animals"},
		{name: "empty means default", category: "", want: "animals"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := s.client.GetCodename(t.Context(), &codenamev1.NameRequest{Category: tt.category})
			if err != nil {
				t.Fatalf("GetCodename: %v", err)
			}
			if got := codename.CategoryOf(resp.GetName()); got != tt.want {
				t.Errorf("got %q from category %q, want category %q", resp.GetName(), got, tt.want)
			}
		})
	}
}

func TestGetCodenameUnknownCategory(t *testing.T) {
	s := startServer(t, Config{})
	_, err := s.client.GetCodename(t.Context(), &codenamev1.NameRequest{Category: "plants"})
	st := status.Convert(err)
	if got, want := st.Code(), codes.InvalidArgument; got != want {
		t.Errorf("code = %v, want %v", got, want)
	}
	if got, want := st.Message(), `unknown category "plants": valid categories are animals, science, space`; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}

func TestListCategories(t *testing.T) {
	s := startServer(t, Config{})
	got, err := s.client.ListCategories(t.Context(), &codenamev1.ListCategoriesRequest{})
	if err != nil {
		t.Fatalf("ListCategories: %v", err)
	}
	want := &codenamev1.ListCategoriesResponse{Categories: codename.Categories(), DefaultCategory: codename.Default}
	if !proto.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// openStream starts KeepGettingCodenames and sends category first, unless
// it is "-" for a stream on which the client sends nothing. The call ends
// with the test, or after waitTimeout at the latest.
func openStream(t *testing.T, ctx context.Context, client codenamev1.CodenameCreatorClient, category string) grpc.BidiStreamingClient[codenamev1.NameRequest, codenamev1.NameResult] {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	t.Cleanup(cancel)
	stream, err := client.KeepGettingCodenames(ctx)
	if err != nil {
		t.Fatalf("KeepGettingCodenames: %v", err)
	}
	if category != "-" {
		send(t, stream, category)
	}
	return stream
}

func send(t *testing.T, stream grpc.BidiStreamingClient[codenamev1.NameRequest, codenamev1.NameResult], category string) {
	t.Helper()
	if err := stream.Send(&codenamev1.NameRequest{Category: category}); err != nil {
		t.Fatalf("send %q: %v", category, err)
	}
}

// recvCategory receives one name and returns its category.
func recvCategory(t *testing.T, stream grpc.BidiStreamingClient[codenamev1.NameRequest, codenamev1.NameResult]) string {
	t.Helper()
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	cat := codename.CategoryOf(resp.GetName())
	if cat == "" {
		t.Fatalf("received %q, which is from no category", resp.GetName())
	}
	return cat
}

// recvSwitch receives names of category from until one of category to
// arrives, and then n more, which must all be of category to: a switch
// takes effect from the next name the server sends, and names already on
// their way may still be of the old category.
func recvSwitch(t *testing.T, stream grpc.BidiStreamingClient[codenamev1.NameRequest, codenamev1.NameResult], from, to string, n int) {
	t.Helper()
	for {
		got := recvCategory(t, stream)
		if got == to {
			break
		}
		if got != from {
			t.Fatalf("got a name from %q while switching from %q to %q", got, from, to)
		}
	}
	for range n {
		if got := recvCategory(t, stream); got != to {
			t.Fatalf("got a name from %q after the switch to %q", got, to)
		}
	}
}

func TestKeepGettingCodenamesFirstNameAtOnce(t *testing.T) {
	// With an hour between names, a name within waitTimeout can only be
	// the one sent on the first request.
	s := startServer(t, Config{StreamInterval: time.Hour})
	tests := []struct {
		name     string
		category string
		want     string
	}{
		{name: "named category", category: "Science", want: "science"},
		{name: "empty means default", category: "", want: "animals"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := openStream(t, t.Context(), s.client, tt.category)
			if got := recvCategory(t, stream); got != tt.want {
				t.Errorf("first name is from %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKeepGettingCodenamesSwitchCategory(t *testing.T) {
	s := startServer(t, Config{StreamInterval: 10 * time.Millisecond})
	stream := openStream(t, t.Context(), s.client, "animals")
	for range 2 {
		if got := recvCategory(t, stream); got != "animals" {
			t.Fatalf("got a name from %q, want animals", got)
		}
	}
	send(t, stream, "science")
	recvSwitch(t, stream, "animals", "science", 3)
	send(t, stream, "SPACE")
	recvSwitch(t, stream, "science", "space", 3)
}

func TestKeepGettingCodenamesAfterHalfClose(t *testing.T) {
	s := startServer(t, Config{StreamInterval: 10 * time.Millisecond})
	stream := openStream(t, t.Context(), s.client, "animals")
	if got := recvCategory(t, stream); got != "animals" {
		t.Fatalf("got a name from %q, want animals", got)
	}
	send(t, stream, "science")
	if err := stream.CloseSend(); err != nil {
		t.Fatalf("CloseSend: %v", err)
	}
	recvSwitch(t, stream, "animals", "science", 5)
}

func TestKeepGettingCodenamesHalfCloseWithoutRequest(t *testing.T) {
	s := startServer(t, Config{StreamInterval: 10 * time.Millisecond})
	stream := openStream(t, t.Context(), s.client, "-")
	if err := stream.CloseSend(); err != nil {
		t.Fatalf("CloseSend: %v", err)
	}
	for range 3 {
		if got := recvCategory(t, stream); got != codename.Default {
			t.Fatalf("got a name from %q, want the default %q", got, codename.Default)
		}
	}
}

func TestKeepGettingCodenamesUnknownCategory(t *testing.T) {
	s := startServer(t, Config{StreamInterval: 10 * time.Millisecond})
	tests := []struct {
		name  string
		first string // "" sends the unknown category first
	}{
		{name: "first request"},
		{name: "mid-stream", first: "space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream := openStream(t, t.Context(), s.client, "-")
			if tt.first != "" {
				send(t, stream, tt.first)
				if got := recvCategory(t, stream); got != tt.first {
					t.Fatalf("got a name from %q, want %q", got, tt.first)
				}
			}
			send(t, stream, "plants")
			var err error
			for err == nil {
				_, err = stream.Recv() // names already on their way may come first
			}
			st := status.Convert(err)
			if got, want := st.Code(), codes.InvalidArgument; got != want {
				t.Errorf("stream ended with %v (%v), want %v", got, err, want)
			}
			if got, want := st.Message(), `unknown category "plants": valid categories are animals, science, space`; got != want {
				t.Errorf("message = %q, want %q", got, want)
			}
		})
	}
}

// TestKeepGettingCodenamesClientCancel checks that cancelling the client's
// context ends the handler at once, and that neither its receiving
// goroutine nor anything else of the call outlives it.
func TestKeepGettingCodenamesClientCancel(t *testing.T) {
	s := startServer(t, Config{StreamInterval: time.Hour})
	// Connect first, so that the connection's goroutines are not counted
	// as the stream's.
	if _, err := s.client.GetCodename(t.Context(), &codenamev1.NameRequest{}); err != nil {
		t.Fatalf("GetCodename: %v", err)
	}
	before := goleak.IgnoreCurrent()
	// Serve starts its HTTP/1.1 server after the gRPC one, so a call may
	// succeed before that server waits in Accept: it is Serve's, not the
	// call's.
	httpAccept := goleak.IgnoreTopFunction("github.com/codename-gateway/codename-gateway/server.(*chanListener).Accept")

	ctx, cancel := context.WithCancel(t.Context())
	stream := openStream(t, ctx, s.client, "space")
	if got := recvCategory(t, stream); got != "space" {
		t.Fatalf("got a name from %q, want space", got)
	}
	cancel()
	if _, err := stream.Recv(); status.Code(err) != codes.Canceled {
		t.Errorf("client Recv after cancel = %v, want Canceled", err)
	}
	// The interceptor logs once the handler has returned.
	s.logs.WaitFor(t, "finished call", map[string]string{methodKey: "KeepGettingCodenames", "grpc.code": "Canceled"})
	goleak.VerifyNone(t, before, httpAccept)
}

// TestKeepGettingCodenamesNoInterval checks that a zero interval sends as
// fast as the client reads, and still takes a new category promptly. The
// flow-control windows are kept at their minimum so that the names the
// server can send ahead of the client are few.
func TestKeepGettingCodenamesNoInterval(t *testing.T) {
	s := startServer(t, Config{StreamInterval: 0},
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	stream := openStream(t, t.Context(), s.client, "animals")
	start := time.Now()
	const n = 500
	for range n {
		if got := recvCategory(t, stream); got != "animals" {
			t.Fatalf("got a name from %q, want animals", got)
		}
	}
	t.Logf("%d names in %v", n, time.Since(start))
	send(t, stream, "science")
	recvSwitch(t, stream, "animals", "science", 100)
	if err := stream.CloseSend(); err != nil {
		t.Fatalf("CloseSend: %v", err)
	}
	recvSwitch(t, stream, "science", "science", 100)
}

// TestKeepGettingCodenamesFailsBeforeSending checks that a call whose first
// request fails ends with that error and sends nothing: in particular the
// failure is not taken for a half-close, which would stream the default
// category. The race it guards against is narrow on a real connection, so
// a fake stream runs the handler many times with both outcomes ready.
func TestKeepGettingCodenamesFailsBeforeSending(t *testing.T) {
	boom := status.Error(codes.DataLoss, "boom")
	tests := []struct {
		name     string
		recv     recvStep
		wantCode codes.Code
	}{
		{name: "receive error", recv: recvStep{err: boom}, wantCode: codes.DataLoss},
		{name: "unknown category", recv: recvStep{category: "plants"}, wantCode: codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 2000 {
				stream, err := runFake(t, &service{interval: time.Hour, draining: make(chan struct{})}, nil, tt.recv)
				if got := status.Code(err); got != tt.wantCode {
					t.Fatalf("KeepGettingCodenames = %v, want code %v", err, tt.wantCode)
				}
				if len(stream.sent) != 0 {
					t.Fatalf("sent %q before failing, want nothing", stream.sent)
				}
			}
		})
	}
}

// TestKeepGettingCodenamesSendError checks that a failed send ends the call
// with the send's error.
func TestKeepGettingCodenamesSendError(t *testing.T) {
	boom := errors.New("boom")
	_, err := runFake(t, &service{draining: make(chan struct{})}, boom, recvStep{category: "space"}, recvStep{err: io.EOF})
	if !errors.Is(err, boom) {
		t.Errorf("KeepGettingCodenames = %v, want %v", err, boom)
	}
}

// runFake runs the handler on a fake stream whose Recv answers with steps
// in turn and whose Send fails with sendErr, and cancels the stream's
// context when the handler returns, as gRPC does.
func runFake(t *testing.T, svc *service, sendErr error, steps ...recvStep) (*fakeStream, error) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream := &fakeStream{ctx: ctx, recv: steps, sendErr: sendErr}
	return stream, svc.KeepGettingCodenames(stream)
}

// recvStep is one answer of fakeStream.Recv: a request for category, or
// err if it is set.
type recvStep struct {
	category string
	err      error
}

// fakeStream is a server stream whose Recv answers with the steps in recv
// and, once they are used up, blocks until ctx ends.
type fakeStream struct {
	grpc.ServerStream
	ctx     context.Context
	mu      sync.Mutex
	recv    []recvStep
	sent    []string
	sendErr error
}

func (f *fakeStream) Context() context.Context { return f.ctx }

func (f *fakeStream) Recv() (*codenamev1.NameRequest, error) {
	f.mu.Lock()
	if len(f.recv) == 0 {
		f.mu.Unlock()
		<-f.ctx.Done()
		return nil, f.ctx.Err()
	}
	step := f.recv[0]
	f.recv = f.recv[1:]
	f.mu.Unlock()
	if step.err != nil {
		return nil, step.err
	}
	return &codenamev1.NameRequest{Category: step.category}, nil
}

func (f *fakeStream) Send(r *codenamev1.NameResult) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, r.GetName())
	return f.sendErr
}
