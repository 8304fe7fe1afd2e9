package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// webSocket bridges a WebSocket to KeepGettingCodenames, for browsers: a
// fetch() request body cannot stay open while the response streams, so the
// page's bidi stream needs a socket. Each text message from the client is a
// JSON NameRequest; each message to it is one line of the REST stream,
// {"result":{...}} or, last, {"error":{...}}.
//
// Only same-origin pages may connect: coder/websocket refuses a handshake
// whose Origin host differs from the request's Host, so another site
// cannot open streams with a visitor's credentials.
func (g *gateway) webSocket(w http.ResponseWriter, r *http.Request) {
	ctx, err := runtime.AnnotateContext(r.Context(), g.mux, r, codenamev1.CodenameCreator_KeepGettingCodenames_FullMethodName, runtime.WithHTTPPathPattern(streamPattern))
	if err != nil {
		g.httpError(w, r, http.StatusBadRequest, err)
		return
	}
	if !g.streams.addSocket() {
		g.httpError(w, r, http.StatusServiceUnavailable, errRestarting)
		return
	}
	defer g.streams.sockets.Done()
	var conn *websocket.Conn
	onOwnStack(func() { conn, err = websocket.Accept(w, r, nil) })
	if err != nil {
		return // Accept has answered the request
	}
	defer conn.CloseNow()
	conn.SetReadLimit(g.maxBodyBytes)

	// The call ends early when the page goes away or sends something
	// invalid, or the gateway shuts down (fail). Reads from and writes to
	// the page keep the request's context: coder/websocket drops the
	// connection when a read's or a write's context ends, so a fail would
	// cut the page off before it is told why. The read ends when the
	// handler returns and closes the socket.
	callCtx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	defer g.streams.onEnd(fail)()
	stream, err := g.openStream(callCtx)
	if err != nil {
		g.closeWithError(ctx, conn, r, causeOr(callCtx, err))
		return
	}
	// The page's messages are read on the handler's goroutine and the
	// codenames written from one of their own: writing (the marshalling
	// above all) runs deeper than reading, and a new goroutine starts with
	// an empty stack where the handler's is already deep in the HTTP
	// server's frames (see onOwnStack). The writer closes the socket when
	// it is done, which ends the read; the handler waits for it.
	written := make(chan struct{})
	go func() {
		defer close(written)
		defer conn.CloseNow()
		for {
			msg, err := stream.Recv()
			if err != nil {
				g.closeWithError(ctx, conn, r, causeOr(callCtx, err))
				return
			}
			if err := g.writeChunk(ctx, conn, r, "result", msg); err != nil {
				return
			}
		}
	}()
	defer func() { <-written }()

	_, inbound := runtime.MarshalerForRequest(g.mux, r)
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			// The page closed the socket or went away (or broke the
			// protocol, which coder/websocket answers itself): the call
			// ends with nobody left to tell; or the writer is done.
			fail(context.Canceled)
			return
		}
		// One message, one request: the marshaler would decode the first
		// JSON value and ignore anything after it. Decoded and sent on a
		// stack of its own, which decoding would otherwise double; pages
		// send a message only to change the category.
		req := new(codenamev1.NameRequest)
		var sendErr error
		onOwnStack(func() {
			err = oneJSONValue(data)
			if err == nil {
				err = inbound.Unmarshal(data, req)
			}
			if err == nil {
				sendErr = stream.Send(req)
			}
		})
		if err != nil {
			fail(status.Errorf(codes.InvalidArgument, "request stream: %v", err))
			return
		}
		if sendErr != nil {
			return // the call is over; the writer's Recv reports why
		}
	}
}

// writeChunk sends {"<key>": msg} as one text message.
func (g *gateway) writeChunk(ctx context.Context, conn *websocket.Conn, r *http.Request, key string, msg proto.Message) error {
	_, outbound := runtime.MarshalerForRequest(g.mux, r)
	b, err := outbound.Marshal(map[string]proto.Message{key: msg})
	if err != nil {
		return err
	}
	// A page that stops reading must not hold the handler forever: flow
	// control would block this write until TCP gave up.
	ctx, cancel := context.WithTimeout(ctx, wsWriteTimeout)
	defer cancel()
	return conn.Write(ctx, websocket.MessageText, b)
}

// wsWriteTimeout bounds one write to a WebSocket client.
const wsWriteTimeout = 30 * time.Second

// closeWithError sends the final {"error":...} message, unless the client
// itself ended the stream, and closes the socket with a code that tells a
// browser whether reconnecting makes sense.
func (g *gateway) closeWithError(ctx context.Context, conn *websocket.Conn, r *http.Request, err error) {
	st := status.Convert(public(err))
	if st.Code() == codes.Canceled {
		conn.Close(websocket.StatusNormalClosure, "")
		return
	}
	// The call's context may be over; the final message gets a fresh one,
	// bounded by the write timeout coder/websocket applies on Close.
	_ = g.writeChunk(context.WithoutCancel(ctx), conn, r, "error", st.Proto())
	code := websocket.StatusInternalError
	switch st.Code() {
	case codes.InvalidArgument:
		code = websocket.StatusPolicyViolation
	case codes.Unavailable:
		code = websocket.StatusServiceRestart
	}
	conn.Close(code, st.Code().String())
}
