// Command codename-server serves the CodenameCreator gRPC service, with
// grpc.health.v1 and server reflection, until SIGINT or SIGTERM, then drains.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/envflag"
	"github.com/codename-gateway/codename-gateway/internal/logbuf"
	"github.com/codename-gateway/codename-gateway/server"
)

func main() {
	// The live heap is a few megabytes, so at the default GOGC=100 the
	// collector runs after every few megabytes of calls. At 200 it runs
	// half as often: about 12 % less CPU per call in the server and in
	// the gateway, and no change in memory per held stream (bench/). A
	// GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	if err := run(context.Background(), os.Args, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "codename-server:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

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
	// instead of one each; warnings and errors go out at once.
	out := logbuf.New(stderr, logbuf.DefaultInterval)
	defer out.Flush()
	logger := slog.New(logbuf.FlushOn(slog.NewTextHandler(out, nil), out, slog.LevelWarn)).With("component", "server")
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	logger.Info("serving gRPC", "addr", lis.Addr().String(), "stream_interval", interval.String())
	err = server.Serve(ctx, lis, server.Config{StreamInterval: *interval, DrainDelay: *drainDelay, DrainTimeout: *drain, Logger: logger, MaxRecvMsgSize: *maxRecv})
	logger.Info("stopped")
	return err
}
