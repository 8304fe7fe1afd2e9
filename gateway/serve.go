package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Serve serves h on lis over HTTP/1.1 and cleartext HTTP/2 (h2c) until ctx
// ends, then shuts down, giving requests in flight up to drain to finish.
// h2c is what lets HAProxy reach the gateway with `proto h2`, which keeps a
// REST bidi stream full-duplex end to end.
func Serve(ctx context.Context, lis net.Listener, h http.Handler, drain time.Duration) error {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:   h,
		Protocols: &protocols,
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
	shutdownCtx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Streams outlive any drain; cut what is left.
		_ = srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
