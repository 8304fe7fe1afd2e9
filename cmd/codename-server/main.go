// Command codename-server serves the CodenameCreator gRPC service, with
// grpc.health.v1 and server reflection, until SIGINT or SIGTERM, then drains.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/envflag"
	"github.com/codename-gateway/codename-gateway/internal/logbuf"
	"github.com/codename-gateway/codename-gateway/server"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "codename-server:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	envflag.GCPercent(getenv, 200)

	fs := envflag.New(args[0], getenv, stderr)
	addr := fs.String("addr", "CODENAME_GRPC_ADDR", "127.0.0.1:9090", "address to serve gRPC on")
	interval := fs.Duration("stream-interval", "CODENAME_STREAM_INTERVAL", time.Second, "pause between codenames on a stream (0: as fast as the client reads)")
	drainDelay := fs.Duration("drain-delay", "CODENAME_DRAIN_DELAY", 2*time.Second, "on shutdown, how long to keep serving with health NOT_SERVING, so that HAProxy moves traffic away first")
	drain := fs.Duration("drain-timeout", "CODENAME_DRAIN_TIMEOUT", 10*time.Second, "how long shutdown waits for calls in flight")
	// A bigger message fails its call with RESOURCE_EXHAUSTED; the server
	// goes on serving everyone else.
	maxRecv := fs.Int("max-recv-bytes", "CODENAME_MAX_RECV_BYTES", server.DefaultMaxRecvMsgSize, "largest gRPC message the server accepts")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}

	// One line per call: buffered, the lines cost one write per many
	// instead of one each.
	logger, out := logbuf.NewLogger(stderr, "server")
	defer out.Flush()
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	logger.Info("serving gRPC", "addr", lis.Addr().String(), "stream_interval", interval.String())
	err = server.Serve(ctx, lis, server.Config{StreamInterval: *interval, DrainDelay: *drainDelay, DrainTimeout: *drain, Logger: logger, MaxRecvMsgSize: *maxRecv})
	logger.Info("stopped")
	return err
}
