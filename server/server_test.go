package server

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc/test/bufconn"
)

// TestServeListenerError checks that Serve fails when its listener does,
// and that it then closes the admin listener too.
func TestServeListenerError(t *testing.T) {
	lis := bufconn.Listen(1)
	_ = lis.Close()
	admin := listenTCP(t)
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	err := Serve(ctx, lis, Config{MetricsListener: admin})
	if err == nil || !strings.HasPrefix(err.Error(), "serve: ") {
		t.Errorf("Serve on a closed listener = %v, want a serve error", err)
	}
	if _, err := admin.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("admin listener Accept after Serve returned: %v, want it closed", err)
	}
}
