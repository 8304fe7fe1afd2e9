package server

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// panicMessage is all a client learns of a panic: the panic value may hold
// anything the server had in memory, and the client needs only to know
// that the fault is not its own.
const panicMessage = "internal error"

// recoverPanic answers a call whose handler panicked with INTERNAL, so that
// one bad call fails alone instead of taking the replica, and every stream
// on it, down with it. The operator gets the panic value and the stack at
// ERROR: recovery's own default would send both to the client instead.
func recoverPanic(logger *slog.Logger) recovery.RecoveryHandlerFuncContext {
	return func(ctx context.Context, p any) error {
		// Called while the panic unwinds, so the stack still shows where
		// it began.
		stack := debug.Stack()
		fullMethod, _ := grpc.Method(ctx)
		service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
		logger.LogAttrs(ctx, slog.LevelError, "panic in call",
			slog.String(serviceKey, service),
			slog.String(methodKey, method),
			slog.String("panic", fmt.Sprint(p)),
			slog.String("stack", string(stack)),
		)
		return status.Error(codes.Internal, panicMessage)
	}
}
