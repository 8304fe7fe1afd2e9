package server_test

// FuzzGRPCRequest sends arbitrary bytes, as they are, as the request message
// of GetCodename or as the first message of KeepGettingCodenames: what any
// gRPC client can put on the wire, past HAProxy and the gateway. `go test`
// runs the seeds in testdata/fuzz/FuzzGRPCRequest/; to fuzz it for a few
// minutes:
//
//	go test ./server -run '^$' -fuzz '^FuzzGRPCRequest$' -fuzztime 2m -fuzzminimizetime 5s

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/grpctest"
	"github.com/codename-gateway/codename-gateway/server"
	"github.com/codename-gateway/codename-gateway/server/codename"
)

// fuzzTimeout bounds each call of a fuzz input: the server answers in
// microseconds, so taking longer is a hang.
const fuzzTimeout = 2 * time.Second

// fuzzMaxRecvMsgSize is the server's default bound on an incoming message,
// 64 KiB; a bigger message may be refused with RESOURCE_EXHAUSTED.
const fuzzMaxRecvMsgSize = 64 << 10

// The invariants, for a message m:
//
//   - m is not a NameRequest (proto.Unmarshal fails, invalid UTF-8 in the
//     category included): INTERNAL, which is what grpc-go answers to a
//     request it cannot unmarshal, before any of this project's code runs;
//   - m's category is unknown: INVALID_ARGUMENT naming the valid ones;
//   - otherwise OK, with a name of m's category (the first one, on a stream);
//   - m is over 64 KiB: RESOURCE_EXHAUSTED is allowed too;
//
// and never a panic, a hang, or any other code.
func FuzzGRPCRequest(f *testing.F) {
	conn := startFuzzServer(f)
	f.Fuzz(func(t *testing.T, msg []byte, stream bool) {
		ctx, cancel := context.WithTimeout(t.Context(), fuzzTimeout)
		defer cancel()
		var (
			out []byte
			err error
		)
		if stream {
			out, err = firstOfStream(ctx, conn, msg)
		} else {
			err = conn.Invoke(ctx, codenamev1.CodenameCreator_GetCodename_FullMethodName, &msg, &out, grpc.ForceCodec(rawCodec{}))
		}
		got := status.Convert(err)
		if got.Code() == codes.DeadlineExceeded {
			t.Fatalf("no answer within %v", fuzzTimeout)
		}
		if len(msg) > fuzzMaxRecvMsgSize && got.Code() == codes.ResourceExhausted {
			return
		}

		req := new(codenamev1.NameRequest)
		if err := proto.Unmarshal(msg, req); err != nil {
			if got.Code() != codes.Internal || !strings.Contains(got.Message(), "unmarshal") {
				t.Fatalf("%x is no NameRequest (%v): got %v, want INTERNAL from grpc-go's unmarshalling", msg, err, got)
			}
			return
		}
		cat, err := codename.Parse(req.GetCategory())
		if err != nil {
			if got.Code() != codes.InvalidArgument || got.Message() != err.Error() {
				t.Fatalf("category %q: got %v, want INVALID_ARGUMENT %q", req.GetCategory(), got, err)
			}
			return
		}
		if got.Code() != codes.OK {
			t.Fatalf("category %q: got %v, want OK", req.GetCategory(), got)
		}
		res := new(codenamev1.NameResult)
		if err := proto.Unmarshal(out, res); err != nil {
			t.Fatalf("response %x is no NameResult: %v", out, err)
		}
		if !cat.Has(res.GetName()) {
			t.Fatalf("category %q: got name %q, not one of %s", req.GetCategory(), res.GetName(), cat.Name())
		}
	})
}

// firstOfStream opens KeepGettingCodenames, sends msg and returns the first
// message back, or the error that ends the stream instead.
func firstOfStream(ctx context.Context, conn *grpc.ClientConn, msg []byte) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream, which would go on forever
	desc := &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}
	s, err := conn.NewStream(ctx, desc, codenamev1.CodenameCreator_KeepGettingCodenames_FullMethodName, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return nil, err
	}
	if err := s.SendMsg(&msg); err != nil {
		// The server has ended the call: RecvMsg says how.
		var out []byte
		return out, s.RecvMsg(&out)
	}
	var out []byte
	return out, s.RecvMsg(&out)
}

// startFuzzServer runs server.Serve on an in-memory listener for the whole
// fuzz target and returns a client connection to it.
func startFuzzServer(f *testing.F) *grpc.ClientConn {
	f.Helper()
	lis := grpctest.Listen(f)
	grpctest.Run(f, lis, 10*time.Second, func(ctx context.Context, lis net.Listener) error {
		return server.Serve(ctx, lis, server.Config{StreamInterval: time.Millisecond, DrainTimeout: time.Second})
	})
	return grpctest.Dial(f, lis)
}

// rawCodec sends and receives messages as the bytes they are. It calls
// itself "proto", so that the server decodes them with its usual codec.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*b = append([]byte(nil), data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }
