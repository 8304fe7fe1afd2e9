package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Drain is how Serve shuts down once its context ends.
type Drain struct {
	// Delay is how long the gateway goes on serving with /healthz already
	// answering 503 NOT_SERVING, before anything closes: time for
	// HAProxy's health checks to send new requests to other gateways.
	Delay time.Duration
	// Timeout bounds how long requests in flight may take to finish once
	// the delay is over and the streams have been told to end; what is
	// left then is cut. Zero cuts it at once.
	Timeout time.Duration
}

// Serve serves h on lis over HTTP/1.1 and cleartext HTTP/2 (h2c) until ctx
// ends, then drains as the gRPC server does. If h is a handler from New,
// /healthz turns to 503 NOT_SERVING for d.Delay while everything else is
// still served; then the listener closes, every stream ends with
// UNAVAILABLE (an error line, an error event, or, for a WebSocket, an error
// message and close code 1012 Service Restart), which tells its client to
// reconnect, and requests in flight get up to d.Timeout to finish.
//
// h2c is what lets HAProxy reach the gateway with `proto h2`, which keeps a
// REST bidi stream full-duplex end to end.
func Serve(ctx context.Context, lis net.Listener, h http.Handler, d Drain) error {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	return serve(ctx, lis, h, d, &protocols)
}

// ServeTLS is Serve over TLS only: HTTP/2 and HTTP/1.1 as the client's
// ALPN chooses, and no cleartext at all. HAProxy reaches the gateway with
// h2 for REST (full-duplex bidi, as with h2c) and with http/1.1 for
// WebSockets, so cfg should offer both, as tlsreload's server configs do;
// it may require client certificates. The handshake has the headers'
// time limit.
func ServeTLS(ctx context.Context, lis net.Listener, h http.Handler, d Drain, cfg *tls.Config) error {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	return serve(ctx, tls.NewListener(lis, cfg), h, d, &protocols)
}

func serve(ctx context.Context, lis net.Listener, h http.Handler, d Drain, protocols *http.Protocols) error {
	srv := &http.Server{
		Handler:   h,
		Protocols: protocols,
		// Headers must arrive promptly; bodies may not, since a stream's
		// body stays open for as long as the stream lives.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	gw, _ := h.(*handler)
	if gw != nil {
		gw.g.health.draining.Store(true)
	}
	if d.Delay > 0 {
		delay := time.NewTimer(d.Delay)
		<-delay.C
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), d.Timeout)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(stopCtx) }()
	if gw != nil {
		// Without this, Shutdown would wait for the streams until the
		// timeout, and then cut them without a word.
		gw.g.streams.end(stopCtx)
	}
	if err := <-shutdown; err != nil {
		_ = srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
