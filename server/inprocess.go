package server

import (
	"context"
	"fmt"
	"net"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/codename-gateway/codename-gateway/internal/telemetry"
)

// inProcessAuthority is the :authority of calls on the in-process
// connection, and the address its peers have: what a log or a metric
// shows instead of a gateway's TCP address.
const inProcessAuthority = "in-process"

// inProcessBufferSize is the in-memory connection's buffer in each
// direction: one HTTP/2 frame of codenames, not bulk data.
const inProcessBufferSize = 64 << 10

// inProcess is a grpc.ClientConnInterface to this very server, for the
// REST gateway when it runs inside the server's process. A unary call
// runs on the caller's goroutine, with no encoding and no network: the
// generated server-side method handler (what grpc-go runs for a call from
// the network) behind the server's own unary interceptors, so that the
// call is logged, counted, recovered and given its deadline exactly as a
// call from a separate gateway is. Streams need the HTTP/2 stream's flow
// control and half-close, so they go over an in-memory connection
// (bufconn) that the same grpc.Server serves, through its stream
// interceptors.
type inProcess struct {
	methods map[string]unaryMethod // by full method name
	chain   grpc.UnaryServerInterceptor
	maxRecv int
	// stopped is closed when the grpc.Server has stopped; a call after
	// that gets UNAVAILABLE, as on a connection the server closed. Until
	// then, through the drain, calls are served: a separate gateway would
	// retry a call the draining server refused on another replica, and
	// the co-located gateway has no other, while its own listener drains
	// as long as the server's does.
	stopped <-chan struct{}

	lis     *bufconn.Listener
	streams *grpc.ClientConn
}

// chainUnary runs interceptors in order around a handler, as
// grpc.ChainUnaryInterceptor does on the server: each inner handler is made
// only when the interceptor above calls on, one closure per interceptor but
// the first (a closure for every interceptor, built up front, was 3 of the
// 129 allocations of a co-located REST call, BenchmarkRESTUnary).
func chainUnary(interceptors []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	if len(interceptors) == 0 {
		return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			return handler(ctx, req)
		}
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return interceptors[0](ctx, req, info, chainFrom(interceptors[1:], info, handler))
	}
}

// chainFrom is the handler that runs interceptors, then final.
func chainFrom(interceptors []grpc.UnaryServerInterceptor, info *grpc.UnaryServerInfo, final grpc.UnaryHandler) grpc.UnaryHandler {
	if len(interceptors) == 0 {
		return final
	}
	return func(ctx context.Context, req any) (any, error) {
		return interceptors[0](ctx, req, info, chainFrom(interceptors[1:], info, final))
	}
}

// inProcessConn returns the server's in-process connection; the caller
// serves its listener (s.gs.Serve(c.lis)) and closes it when done.
func (s *grpcServer) inProcessConn() (*inProcess, error) {
	lis := bufconn.Listen(inProcessBufferSize)
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithAuthority(inProcessAuthority),
	}, telemetry.DialOptions()...)
	cc, err := grpc.NewClient("passthrough:///"+inProcessAuthority, opts...)
	if err != nil {
		return nil, fmt.Errorf("in-process connection: %w", err)
	}
	return &inProcess{
		methods: s.unaryMethods,
		chain:   chainUnary(s.unaryInterceptors),
		maxRecv: s.cfg.MaxRecvMsgSize,
		stopped: s.stopped,
		lis:     lis,
		streams: cc,
	}, nil
}

// Close closes the in-memory connection.
func (c *inProcess) Close() error { return c.streams.Close() }

// NewStream opens a stream over the in-memory connection.
func (c *inProcess) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.streams.NewStream(ctx, desc, method, opts...)
}

// Invoke runs a unary call in process. What the server's handler and
// interceptors see is what a call from the network brings: the caller's
// outgoing metadata as incoming metadata (with the traceparent that
// telemetry.DialOptions would write), the deadline, a peer, and the method
// name for grpc.Method; what they set with grpc.SetHeader and SetTrailer
// reaches the caller's grpc.Header and grpc.Trailer options. Errors are
// those a client would get: a context's end as DEADLINE_EXCEEDED or
// CANCELLED, an error without a status as UNKNOWN.
func (c *inProcess) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	if isClosed(c.stopped) {
		return status.Error(codes.Unavailable, "the server is shutting down")
	}
	m, ok := c.methods[method]
	if !ok {
		return status.Errorf(codes.Unimplemented, "unknown method %s", method)
	}
	in, ok := args.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "request of %s is %T, not a protobuf message", method, args)
	}
	if n := proto.Size(in); n > c.maxRecv {
		// grpc-go's own words for a message over the server's limit.
		return status.Errorf(codes.ResourceExhausted, "grpc: received message larger than max (%d vs. %d)", n, c.maxRecv)
	}
	stream := &unaryStream{method: method}
	sctx, endSpan := traceInProcess(incomingContext(ctx), method)
	sctx = grpc.NewContextWithServerTransportStream(sctx, stream)
	sctx = peer.NewContext(sctx, &inProcessPeer)
	resp, err := m.handler(m.impl, sctx, func(v any) error {
		// The handler gets a request of its own, as it would from the
		// wire: nothing it does to it reaches the caller.
		proto.Merge(v.(proto.Message), in)
		return nil
	}, c.chain)
	if err == nil && ctx.Err() != nil {
		// The caller's deadline passed while the handler ran: a client
		// would have stopped waiting for the answer.
		err = ctx.Err()
	}
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			*o.HeaderAddr = stream.header()
		case grpc.TrailerCallOption:
			*o.TrailerAddr = stream.trailer()
		case grpc.PeerCallOption:
			*o.PeerAddr = inProcessPeer
		}
	}
	if err != nil {
		if _, ok := status.FromError(err); !ok {
			err = status.FromContextError(err).Err()
		}
	}
	endSpan(err)
	if err != nil {
		return err
	}
	out, ok := resp.(proto.Message)
	if !ok || out == nil {
		return status.Errorf(codes.Internal, "grpc: error while marshaling: answer of %s is %T", method, resp)
	}
	r := reply.(proto.Message)
	proto.Reset(r)
	proto.Merge(r, out)
	return nil
}

// incomingContext turns the caller's outgoing metadata into the incoming
// metadata of the call, with the keys grpc-go's transport adds.
func incomingContext(ctx context.Context) context.Context {
	md, _ := metadata.FromOutgoingContext(ctx) // a copy of its own
	if md == nil {
		md = metadata.MD{}
	}
	telemetry.Propagator.Inject(ctx, mdCarrier(md))
	for k, v := range transportMD {
		md[k] = v
	}
	return metadata.NewIncomingContext(ctx, md)
}

// transportMD is what grpc-go's transport adds to every call's incoming
// metadata, made once rather than for each call (3 of a co-located REST
// call's allocations, BenchmarkRESTUnary). The values are shared: whoever
// reads incoming metadata through the metadata package gets copies of
// them, and the in-process call writes to none.
var transportMD = metadata.MD{
	":authority":   {inProcessAuthority},
	"content-type": {"application/grpc"},
	"user-agent":   {"grpc-go/" + grpc.Version},
}

// mdCarrier writes a propagator's headers into metadata.
type mdCarrier metadata.MD

func (c mdCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}
func (c mdCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }
func (c mdCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// inProcessAddr is the address of both ends of an in-process call.
type inProcessAddr struct{}

func (inProcessAddr) Network() string { return inProcessAuthority }
func (inProcessAddr) String() string  { return inProcessAuthority }

var inProcessPeer = peer.Peer{Addr: inProcessAddr{}, LocalAddr: inProcessAddr{}}

// unaryStream is the grpc.ServerTransportStream of an in-process call: it
// names the method and keeps the headers and trailers the handler sets.
type unaryStream struct {
	method string
	mu     sync.Mutex
	hdr    metadata.MD
	trl    metadata.MD
}

func (s *unaryStream) Method() string { return s.method }

func (s *unaryStream) SetHeader(md metadata.MD) error { return s.join(&s.hdr, md) }

func (s *unaryStream) SendHeader(md metadata.MD) error { return s.SetHeader(md) }

func (s *unaryStream) SetTrailer(md metadata.MD) error { return s.join(&s.trl, md) }

func (s *unaryStream) join(to *metadata.MD, md metadata.MD) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	*to = metadata.Join(*to, md)
	return nil
}

// header and trailer are what the handler set; never nil, as a grpc-go
// client's Header and Trailer options are never left nil.
func (s *unaryStream) header() metadata.MD  { return s.get(&s.hdr) }
func (s *unaryStream) trailer() metadata.MD { return s.get(&s.trl) }

func (s *unaryStream) get(md *metadata.MD) metadata.MD {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *md == nil {
		return metadata.MD{}
	}
	return *md
}
