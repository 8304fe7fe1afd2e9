package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/codename-gateway/codename-gateway/gateway"
)

// RESTConfig runs the REST gateway inside the server's process: the
// co-located mode. The gateway keeps a listener of its own, so that HAProxy
// still sends REST and gRPC to different backends by content type, but it
// calls this server without a network hop: unary calls in process, streams
// over an in-memory connection (inprocess.go). It drains with the server:
// its /healthz says NOT_SERVING from the moment the server's health does,
// and its listener closes when the gRPC listener does.
//
// A gateway of its own (cmd/codename-gateway) does the same work in a
// separate process, for deployments that scale the two sides apart.
type RESTConfig struct {
	// Listener serves REST, the web page, gRPC-Web and Connect, over
	// HTTP/1.1 and h2c (or TLS); Serve closes it.
	Listener net.Listener
	// TLS, if set, serves Listener over TLS only, as gateway.ServeTLS
	// does. Nil serves cleartext.
	TLS *tls.Config
	// Gateway tunes the gateway. A nil Logger means the server's, and
	// nil Metrics the server's registry, which its admin listener serves.
	Gateway gateway.Options
}

// restServer is a running co-located gateway; nil when there is none.
type restServer struct {
	lis  net.Listener
	conn *inProcess
	// grpcServed ends when the grpc.Server stops serving the in-memory
	// listener; done is closed when the gateway's Serve has returned err.
	grpcServed chan error
	done       chan struct{}
	err        error
}

// startREST starts the co-located gateway, if cfg.REST asks for one. It
// drains when ctx ends, as the server does.
func (s *grpcServer) startREST(ctx context.Context) (*restServer, error) {
	rc := s.cfg.REST
	if rc == nil {
		return nil, nil
	}
	conn, err := s.inProcessConn()
	if err != nil {
		rc.Listener.Close()
		return nil, err
	}
	opts := rc.Gateway
	if opts.Logger == nil {
		opts.Logger = s.logger
	}
	if opts.Metrics == nil {
		opts.Metrics = s.reg
	}
	h, err := gateway.New(ctx, conn, opts)
	if err != nil {
		conn.Close()
		rc.Listener.Close()
		return nil, fmt.Errorf("REST gateway: %w", err)
	}
	r := &restServer{lis: rc.Listener, conn: conn, grpcServed: make(chan error, 1), done: make(chan struct{})}
	go func() { r.grpcServed <- s.gs.Serve(conn.lis) }()
	d := gateway.Drain{Delay: s.cfg.DrainDelay, Timeout: s.cfg.DrainTimeout}
	go func() {
		defer close(r.done)
		if rc.TLS != nil {
			r.err = gateway.ServeTLS(ctx, rc.Listener, h, d, rc.TLS)
		} else {
			r.err = gateway.Serve(ctx, rc.Listener, h, d)
		}
		if r.err == nil && ctx.Err() == nil {
			r.err = errors.New("the REST listener stopped serving")
		}
		// As a gateway process says at exit, so that whoever watches
		// for it finds it in either mode.
		opts.Logger.Info("stopped")
	}()
	return r, nil
}

// failed is closed, with r.err set, if the gateway stops serving before
// the server drains; never, when there is no gateway.
func (r *restServer) failed() <-chan struct{} {
	if r == nil {
		return nil
	}
	return r.done
}

// abort closes the gateway's listener without a drain, and waits for it;
// for when the server itself fails, once the grpc.Server has stopped.
func (r *restServer) abort() {
	if r == nil {
		return
	}
	r.lis.Close()
	r.wait()
}

// wait waits for the gateway's drain to end and closes its in-memory
// connection; call it once the grpc.Server has stopped.
func (r *restServer) wait() {
	if r == nil {
		return
	}
	<-r.done
	r.conn.Close()
	<-r.grpcServed
}
