package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// streamPattern is the REST route of KeepGettingCodenames in codename.proto.
const streamPattern = "/v1/codenames:stream"

// keepGettingCodenames bridges a REST request whose body is a stream of JSON
// NameRequest objects to the bidi gRPC call, and writes each NameResult as
// one line of JSON while the request body is still open.
//
// It replaces the generated handler, which logs and drops request decode
// errors: here a malformed or oversized request message ends the stream
// with an INVALID_ARGUMENT error line the client can read.
func (g *gateway) keepGettingCodenames(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	// Go's HTTP/1 server is half-duplex unless asked: without this, reading
	// the body after the first response write fails and category changes
	// sent by an HTTP/1.1 client would be lost.
	if r.ProtoMajor == 1 {
		_ = http.NewResponseController(w).EnableFullDuplex()
		// And the connection ends with the stream: in full-duplex mode
		// net/http reads what is left of the body after the handler
		// returns, and reaching its end then races with reading the next
		// request, a panic it recovers from (golang/go#68560).
		w.Header().Set("Connection", "close")
	}
	ctx, fail := context.WithCancelCause(r.Context())
	defer fail(nil)
	defer g.streams.onEnd(fail)()
	inbound, outbound := runtime.MarshalerForRequest(g.mux, r)
	ctx, err := runtime.AnnotateContext(ctx, g.mux, r, codenamev1.CodenameCreator_KeepGettingCodenames_FullMethodName, runtime.WithHTTPPathPattern(streamPattern))
	if err != nil {
		runtime.HTTPError(ctx, g.mux, outbound, w, r, err)
		return
	}
	stream, err := g.openStream(ctx)
	if err != nil {
		runtime.HTTPError(ctx, g.mux, outbound, w, r, causeOr(ctx, err))
		return
	}
	forwarded := make(chan struct{})
	go func() {
		defer close(forwarded)
		g.forwardRequests(stream, inbound, r.Body, fail)
	}()
	// net/http forbids reading the body once the handler has returned, and
	// forwardRequests may be blocked in a read for as long as the client
	// keeps the body open: end the call (which ends a Send), unblock the
	// read, and wait for it before returning.
	defer func() {
		fail(nil)
		if err := http.NewResponseController(w).SetReadDeadline(time.Now()); err != nil {
			// Not a net/http server (a test's recorder, say): closing the
			// body is the other way to end a read.
			_ = r.Body.Close()
		}
		<-forwarded
	}()

	header, err := stream.Header()
	if err != nil {
		runtime.HTTPError(ctx, g.mux, outbound, w, r, causeOr(ctx, err))
		return
	}
	ctx = runtime.NewServerMetadataContext(ctx, runtime.ServerMetadata{HeaderMD: header})
	runtime.ForwardResponseStream(ctx, g.mux, ndjson{outbound}, w, r, func() (proto.Message, error) {
		msg, err := stream.Recv()
		if err != nil {
			return nil, causeOr(ctx, err)
		}
		return msg, nil
	})
}

// ndjsonType is the media type of a response that is a stream of JSON
// values, one a line, as the OpenAPI document names it: application/json
// would promise one JSON value, which a client reading the whole body as
// JSON would fail on.
const ndjsonType = "application/x-ndjson"

// ndjson is the marshaler the stream's lines are written with: the
// request's own, but naming the whole stream's media type, also when the
// stream's only line is the error that ends it before its first codename.
// Errors answered before the stream starts keep the plain JSON error body
// and application/json.
type ndjson struct{ runtime.Marshaler }

func (ndjson) ContentType(any) string       { return ndjsonType }
func (ndjson) StreamContentType(any) string { return ndjsonType }

// Delimiter keeps the marshaler's own line separator: embedding does not
// carry over the optional runtime.Delimited.
func (m ndjson) Delimiter() []byte {
	if d, ok := m.Marshaler.(runtime.Delimited); ok {
		return d.Delimiter()
	}
	return []byte("\n")
}

// forwardRequests decodes request messages from the body and sends them on
// the stream until the body ends (a half-close) or holds something invalid,
// which cancels the call with the reason.
func (g *gateway) forwardRequests(stream codenamev1.CodenameCreator_KeepGettingCodenamesClient, m runtime.Marshaler, body io.Reader, fail context.CancelCauseFunc) {
	limit := &messageLimiter{r: body, max: g.maxBodyBytes}
	dec := m.NewDecoder(limit)
	for {
		req := new(codenamev1.NameRequest)
		err := dec.Decode(req)
		limit.n = 0
		if errors.Is(err, io.EOF) {
			_ = stream.CloseSend()
			return
		}
		if err != nil {
			fail(status.Errorf(codes.InvalidArgument, "request stream: %v", err))
			return
		}
		// The limiter's bound is approximate, the server's exact: a
		// message just past it would come back RESOURCE_EXHAUSTED (429).
		if int64(proto.Size(req)) > g.maxBodyBytes {
			fail(status.Errorf(codes.InvalidArgument, "request stream: request message is larger than %d bytes", g.maxBodyBytes))
			return
		}
		if err := stream.Send(req); err != nil {
			return // the call is over; Recv reports why
		}
	}
}

// causeOr returns the status the call was cancelled with, if it was
// cancelled with one (by forwardRequests, or because the gateway shuts
// down), and err otherwise.
func causeOr(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	if s, ok := status.FromError(context.Cause(ctx)); ok {
		return s.Err()
	}
	return err
}

// messageLimiter fails a read once more than max bytes have been read since
// the last message was decoded. The JSON decoder reads ahead in chunks, so
// the bound is approximate by one buffer, which is all it needs to be: it
// stops a client from sending one endless message.
type messageLimiter struct {
	r   io.Reader
	n   int64
	max int64
}

func (l *messageLimiter) Read(p []byte) (int, error) {
	if l.n > l.max {
		return 0, fmt.Errorf("request message is larger than %d bytes", l.max)
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	return n, err
}
