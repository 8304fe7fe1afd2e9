package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/api/codename/v1/codenamev1connect"
)

// connectPrefix is where the gRPC paths live; the same paths answer
// gRPC-Web and the Connect protocol here, while native gRPC goes straight
// from HAProxy to the gRPC server.
const connectPrefix = "/codename.v1.CodenameCreator/"

// newConnectHandler returns connect-go's handler for the service, which
// does the protocols' framing, codecs, timeouts and error forms; each call
// goes on to the gRPC server through client, like a REST call.
func newConnectHandler(client codenamev1.CodenameCreatorClient, streams *streamEnd, maxBodyBytes int64) http.Handler {
	_, h := codenamev1connect.NewCodenameCreatorHandler(&connectService{client, streams},
		// The JSON codec of this gateway's REST face refuses unknown
		// fields too; connect-go's default JSON codec would drop them.
		connect.WithCodec(strictJSON{}),
		// Each message is bounded as a REST body is.
		connect.WithReadMaxBytes(int(maxBodyBytes)),
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isWebText(r) {
			serveWebText(h, w, r, maxBodyBytes)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// connectService forwards each call to the gRPC server.
type connectService struct {
	client  codenamev1.CodenameCreatorClient
	streams *streamEnd
}

func (s *connectService) GetCodename(ctx context.Context, req *connect.Request[codenamev1.NameRequest]) (*connect.Response[codenamev1.NameResult], error) {
	res, err := s.client.GetCodename(outgoing(ctx, req.Header()), req.Msg)
	if err != nil {
		return nil, connectError(err)
	}
	return connect.NewResponse(res), nil
}

func (s *connectService) ListCategories(ctx context.Context, req *connect.Request[codenamev1.ListCategoriesRequest]) (*connect.Response[codenamev1.ListCategoriesResponse], error) {
	res, err := s.client.ListCategories(outgoing(ctx, req.Header()), req.Msg)
	if err != nil {
		return nil, connectError(err)
	}
	return connect.NewResponse(res), nil
}

// errOneCategory ends a stream whose client sent a second message: over
// these protocols a browser can only send its request whole before it reads
// (fetch has no full-duplex body), so the stream is a server stream, and a
// client that streams anyway is told where switching categories works.
var errOneCategory = connect.NewError(connect.CodeInvalidArgument, errors.New(
	"over gRPC-Web and Connect, KeepGettingCodenames takes one category (the first message) and streams codenames for it; to switch categories on an open stream use the WebSocket on GET /v1/codenames:stream"))

// KeepGettingCodenames serves the bidi method as a server stream: the
// first message picks the category, and the stream runs until the client
// goes away, the server ends it, or the client sends a second message.
func (s *connectService) KeepGettingCodenames(ctx context.Context, stream *connect.BidiStream[codenamev1.NameRequest, codenamev1.NameResult]) error {
	first, err := stream.Receive()
	if errors.Is(err, io.EOF) {
		return connect.NewError(connect.CodeInvalidArgument, errors.New("send a NameRequest with the category as the stream's first message"))
	}
	if err != nil {
		return err
	}
	ctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	defer s.streams.onEnd(fail)()
	up, err := s.client.KeepGettingCodenames(outgoing(ctx, stream.RequestHeader()))
	if err != nil {
		return connectError(causeOr(ctx, err))
	}
	if err := up.Send(first); err != nil && !errors.Is(err, io.EOF) {
		return connectError(causeOr(ctx, err))
	}
	// The upstream send side stays open: the server ends a stream whose
	// client half-closes, and a server-stream client half-closes at once.
	go func() {
		if _, err := stream.Receive(); err == nil {
			fail(errOneCategory)
		}
	}()
	for {
		res, err := up.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if c := context.Cause(ctx); errors.Is(c, errOneCategory) {
				return errOneCategory
			}
			return connectError(causeOr(ctx, err))
		}
		if err := stream.Send(res); err != nil {
			return err // the client went away
		}
	}
}

// outgoing adds to ctx the metadata a REST call would carry on to the gRPC
// server (see incomingHeader): who called, as HAProxy identified them, and
// the request ID. The trace goes on from ctx, as for REST.
func outgoing(ctx context.Context, h http.Header) context.Context {
	var kv []string
	for _, k := range []string{apiKeyIDHeader, "x-request-id"} {
		if v := h.Get(k); v != "" {
			kv = append(kv, k, v)
		}
	}
	if len(kv) == 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// connectError carries a gRPC status over to connect-go, which writes it
// in the caller's protocol. The message is the one a REST caller would
// read (see streamErrorHandler); the status details go along.
func connectError(err error) error {
	st := status.Convert(stable(validUTF8(public(err))))
	if st.Code() == codes.OK {
		return nil
	}
	ce := connect.NewError(connect.Code(st.Code()), errors.New(st.Message()))
	for _, d := range st.Proto().GetDetails() {
		if detail, err := connect.NewErrorDetail(d); err == nil {
			ce.AddDetail(detail)
		}
	}
	return ce
}

// flusher gives connect-go, which streams only through an http.Flusher,
// the flushing of whatever writer lies under the gateway's wrappers.
type flusher struct{ http.ResponseWriter }

func (f flusher) Flush() { _ = http.NewResponseController(f.ResponseWriter).Flush() }

func (f flusher) Unwrap() http.ResponseWriter { return f.ResponseWriter }
