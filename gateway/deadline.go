package gateway

import (
	"context"
	"time"

	"google.golang.org/grpc"
)

// DefaultCallTimeout bounds each unary REST call to the gRPC server. It is
// below HAProxy's 30 s `timeout server` on the unary backend, so that a
// call the server does not answer ends here, with a 504 and the gateway's
// JSON error body, and is cancelled on the server; at HAProxy's timeout the
// client would get a bare 504 while the call went on.
const DefaultCallTimeout = 20 * time.Second

// unaryDeadline gives every unary call on its connection a deadline at most
// timeout away. A caller's shorter deadline (a Grpc-Timeout header) stays,
// since a context's deadline only ever moves closer. Streams get none: they
// live for as long as their client wants.
type unaryDeadline struct {
	grpc.ClientConnInterface
	timeout time.Duration
}

func (c unaryDeadline) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.ClientConnInterface.Invoke(ctx, method, args, reply, opts...)
}
