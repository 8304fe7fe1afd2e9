package gateway

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// DefaultSSEHeartbeat is how long a Server-Sent Events stream goes without
// a write before the gateway writes a comment. It bounds how long the
// gateway holds the stream of a client that has gone (HAProxy 2.6 tells it
// only when it writes), at some 20 bytes per stream each time, and stays
// well below the 60 s idle timeout common to proxies and load balancers,
// let alone HAProxy's 5 minutes.
const DefaultSSEHeartbeat = 15 * time.Second

// serverSentEvents serves KeepGettingCodenames as text/event-stream for
// EventSource and `curl -N`: the category comes from the query, each
// codename is a message event whose data is {"result":{...}}, and a failure
// is an event named "error" whose data is {"error":{...}}, after which the
// response ends. Errors, the first included, arrive as events on a 200
// response, because EventSource hides the body of any other status.
func (g *gateway) serverSentEvents(w http.ResponseWriter, r *http.Request) {
	ctx, err := runtime.AnnotateContext(r.Context(), g.mux, r, codenamev1.CodenameCreator_KeepGettingCodenames_FullMethodName, runtime.WithHTTPPathPattern(streamPattern))
	if err != nil {
		g.httpError(w, r, http.StatusBadRequest, err)
		return
	}
	_, outbound := runtime.MarshalerForRequest(g.mux, r)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	// retry: how long EventSource waits before it reconnects on its own.
	_, _ = w.Write([]byte("retry: 1000\n\n"))
	_ = rc.Flush()

	event := func(name, key string, msg proto.Message) error {
		b, err := outbound.Marshal(map[string]proto.Message{key: msg})
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if name != "" {
			buf.WriteString("event: " + name + "\n")
		}
		buf.WriteString("data: ")
		buf.Write(b) // compact JSON: one line, as SSE data must be
		buf.WriteString("\n\n")
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
		return rc.Flush()
	}
	sendError := func(err error) { _ = event("error", "error", status.Convert(public(err)).Proto()) }

	category := r.URL.Query().Get("category")
	if !utf8.ValidString(category) {
		// A proto string must be UTF-8: the gRPC client would refuse to
		// send it, and call that INTERNAL.
		sendError(status.Errorf(codes.InvalidArgument, "category %q is not valid UTF-8", category))
		return
	}
	callCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer g.streams.onEnd(cancel)()
	stream, err := g.openStream(callCtx)
	if err != nil {
		sendError(causeOr(callCtx, err))
		return
	}
	// The whole request is one category; half-closing leaves the stream
	// running until the client goes away.
	if err := stream.Send(&codenamev1.NameRequest{Category: category}); err != nil {
		if _, err = stream.Recv(); err != nil && ctx.Err() == nil {
			sendError(causeOr(callCtx, err))
		}
		return
	}
	_ = stream.CloseSend()

	// The handler waits in Recv, which may wait an hour for the next
	// codename, and the heartbeat is written from a timer meanwhile: one
	// goroutine per held stream, not one more to wait in Recv. mu makes
	// the two writers take turns, and returned keeps the timer from
	// writing once the handler has returned. A heartbeat that fails ends
	// the call, and so the Recv, with errClientGone.
	var mu sync.Mutex
	returned := false
	defer func() {
		mu.Lock()
		returned = true
		mu.Unlock()
	}()
	var idle *time.Timer
	if g.sseHeartbeat > 0 {
		// Held while idle is set, which the timer's function reads.
		mu.Lock()
		idle = time.AfterFunc(g.sseHeartbeat, func() {
			mu.Lock()
			defer mu.Unlock()
			if returned {
				return
			}
			// A comment: EventSource ignores it, but a client that has
			// gone makes the write fail, or makes HAProxy reset the
			// connection, which ends ctx.
			_, err := w.Write([]byte(": keep-alive\n\n"))
			if err == nil {
				err = rc.Flush()
			}
			if err != nil {
				cancel(errClientGone)
				return
			}
			idle.Reset(g.sseHeartbeat)
		})
		mu.Unlock()
		defer idle.Stop()
	}
	for {
		msg, err := stream.Recv()
		mu.Lock()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(context.Cause(callCtx), errClientGone) { // else nobody is listening
				sendError(causeOr(callCtx, err))
			}
			mu.Unlock()
			return
		}
		err = event("", "result", msg)
		mu.Unlock()
		if err != nil {
			return
		}
		if idle != nil {
			idle.Reset(g.sseHeartbeat)
		}
	}
}

// errClientGone ends a Server-Sent Events call whose heartbeat could not
// be written: nobody is left to tell why.
var errClientGone = errors.New("the client has gone")
