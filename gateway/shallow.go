package gateway

import (
	"context"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// onOwnStack runs f on a goroutine of its own and waits for it, passing
// on a panic. For the deep calls a stream's handler makes once (grpc-go's
// NewStream, a WebSocket's handshake): each runs past 8 KB of stack on top
// of the HTTP server's frames, and the goroutine that holds a stream keeps
// the largest stack it ever needed, since a garbage collection halves a
// stack only while less than a quarter of it is in use. Run apart, they
// leave a held stream's handler at 8 KB of stack instead of 16 (server
// BenchmarkHeldStream), for a goroutine start per stream.
func onOwnStack(f func()) {
	var p any
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { p = recover() }()
		f()
	}()
	<-done
	if p != nil {
		panic(p)
	}
}

// openStream opens a KeepGettingCodenames call on its own stack.
func (g *gateway) openStream(ctx context.Context) (stream codenamev1.CodenameCreator_KeepGettingCodenamesClient, err error) {
	onOwnStack(func() { stream, err = g.client.KeepGettingCodenames(ctx) })
	return stream, err
}
