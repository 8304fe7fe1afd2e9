package gateway

import (
	"context"
	"net/http"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errRestarting ends every stream when the gateway shuts down, and refuses
// new ones from then on. UNAVAILABLE is what clients and the web page take
// as a cue to reconnect, which by then takes them to another gateway:
// /healthz has said NOT_SERVING for the drain delay.
var errRestarting = status.Error(codes.Unavailable, "the gateway is restarting: reconnect")

// handler is what New returns: the gateway's routes, and the gateway
// itself, which Serve drains.
type handler struct {
	http.Handler
	g *gateway
}

// streamEnd is how a gateway ends its streams when it shuts down.
type streamEnd struct {
	// ctx is done once streams must end.
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex // guards ended, and orders sockets.Add before Wait
	ended  bool
	// sockets counts the WebSocket handlers still running: http.Server's
	// Shutdown lets go of hijacked connections without waiting for them,
	// and a process that exited before a socket's close frame went out
	// would leave the page a 1006 instead of a 1012.
	sockets sync.WaitGroup
}

func newStreamEnd() *streamEnd {
	ctx, cancel := context.WithCancel(context.Background())
	return &streamEnd{ctx: ctx, cancel: cancel}
}

// onEnd cancels a call with errRestarting when the gateway ends its
// streams, or at once if it has; the returned stop undoes that once the call
// is over.
func (e *streamEnd) onEnd(cancel context.CancelCauseFunc) (stop func() bool) {
	return context.AfterFunc(e.ctx, func() { cancel(errRestarting) })
}

// addSocket counts one more WebSocket handler, unless the streams have
// ended. Each successful call must be matched by one of sockets.Done.
func (e *streamEnd) addSocket() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ended {
		return false
	}
	e.sockets.Add(1)
	return true
}

// end ends every stream, and waits for the WebSocket handlers to close
// their sockets until ctx is done.
func (e *streamEnd) end(ctx context.Context) {
	e.mu.Lock()
	e.ended = true
	e.mu.Unlock()
	e.cancel()
	closed := make(chan struct{})
	go func() {
		e.sockets.Wait()
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
	}
}
