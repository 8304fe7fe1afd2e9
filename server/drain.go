package server

import (
	"net"
	"net/http"
	"time"
)

// running is what serve has started on the gRPC port, which stopping the
// server must end in order.
type running struct {
	lis     net.Listener // the gRPC port, before the split
	healthz *http.Server // GET /healthz on the gRPC port
	rest    *restServer  // nil without a co-located gateway
	// grpcDone is closed when the grpc.Server has stopped serving the
	// port, with grpcErr what its Serve returned.
	grpcDone chan struct{}
	grpcErr  error
}

// drain stops the server gracefully, once serve's context has ended:
// health turns to NOT_SERVING, the server goes on serving for DrainDelay,
// then refuses new connections, ends open streams and waits up to
// DrainTimeout for the calls in flight before it closes what is left.
func (s *grpcServer) drain(r *running) {
	s.health.Shutdown() // every service reports NOT_SERVING from now on
	s.logger.Info("draining", "delay", s.cfg.DrainDelay)
	if s.cfg.DrainDelay > 0 {
		delay := time.NewTimer(s.cfg.DrainDelay)
		<-delay.C
	}
	r.lis.Close() // new connections are refused: a clear signal to HAProxy
	_ = r.healthz.Close()
	close(s.draining)
	stopped := make(chan struct{})
	go func() {
		s.gs.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(s.cfg.DrainTimeout)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		s.logger.Warn("drain timed out, closing remaining connections", "timeout", s.cfg.DrainTimeout)
		s.gs.Stop()
		<-stopped
	}
	<-r.grpcDone
	close(s.stopped)
	r.rest.wait()
}

// abort stops everything at once, when the gRPC port or the co-located
// gateway has failed: there is no serving left to drain.
func (s *grpcServer) abort(r *running) {
	r.lis.Close()
	_ = r.healthz.Close()
	s.gs.Stop() // ends the stream workers too
	<-r.grpcDone
	close(s.stopped)
	r.rest.abort()
}
