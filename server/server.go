// Package server is the gRPC side of the project: the CodenameCreator service
// around the codename generator, grpc.health.v1 and server reflection,
// served on a listener the caller provides and drained gracefully on
// shutdown. The same port answers HTTP/1.1 GET /healthz, because HAProxy 2.6
// cannot send a gRPC health check; Prometheus metrics are served only on an
// admin listener of their own, which HAProxy never forwards to. Given a
// REST listener (Config.REST), the server also runs the REST gateway in its
// own process, calling the service without a network hop.
package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
)

// Serve serves gRPC on lis until ctx ends. HTTP/1.1 requests on the same
// listener get GET /healthz (200 while SERVING, 503 otherwise); metrics are
// on cfg.MetricsListener. When ctx ends, Serve drains: health turns to
// NOT_SERVING, the server goes on serving for cfg.DrainDelay, then stops
// accepting, ends open streams with UNAVAILABLE so that clients reconnect
// elsewhere, lets unary calls in flight finish, closes cfg.MetricsListener
// and returns nil.
func Serve(ctx context.Context, lis net.Listener, cfg Config) error {
	return newServer(cfg).serve(ctx, lis)
}

// serve is Serve, for a server already built: it starts the admin
// listener, the co-located gateway and the split gRPC port, then waits for
// one of them to fail or for ctx to end, and stops them all (drain.go).
func (s *grpcServer) serve(ctx context.Context, lis net.Listener) error {
	var httpServers sync.WaitGroup
	defer httpServers.Wait()
	if s.cfg.MetricsListener != nil {
		// Closed last, so that metrics can be scraped for the whole drain.
		admin := s.serveHTTP(&httpServers, "admin listener", s.cfg.MetricsListener, adminHandler(s.health, s.reg))
		defer admin.Close()
	}
	if s.cfg.TLS != nil {
		// Decrypted before the split, which then tells gRPC from HTTP/1.1
		// by the same first bytes as in cleartext; sniffTimeout bounds the
		// handshake too, since the first Read performs it.
		lis = tls.NewListener(lis, s.cfg.TLS)
	}
	rest, err := s.startREST(ctx)
	if err != nil {
		lis.Close()
		s.gs.Stop()
		return err
	}
	grpcLis, httpLis := split(lis)
	r := &running{lis: lis, rest: rest, grpcDone: make(chan struct{})}
	r.healthz = s.serveHTTP(&httpServers, "health endpoint", httpLis, healthHandler(s.health))
	go func() {
		r.grpcErr = s.gs.Serve(grpcLis)
		close(r.grpcDone)
	}()
	select {
	case <-r.grpcDone:
		s.abort(r)
		return fmt.Errorf("serve: %w", r.grpcErr)
	case <-rest.failed():
		s.abort(r)
		return fmt.Errorf("REST: %w", rest.err)
	case <-ctx.Done():
	}
	s.drain(r)
	return nil
}
