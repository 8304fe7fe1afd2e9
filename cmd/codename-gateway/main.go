// Command codename-gateway serves the REST gateway (JSON to gRPC, streaming
// as newline-delimited JSON), its health endpoint, OpenAPI document and web
// page, over HTTP/1.1 and h2c, until SIGINT or SIGTERM.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/codename-gateway/codename-gateway/gateway"
	"github.com/codename-gateway/codename-gateway/internal/envflag"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "codename-gateway:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	fs := envflag.New(args[0], getenv, stderr)
	addr := fs.String("addr", "CODENAME_GATEWAY_ADDR", "127.0.0.1:8081", "address to serve HTTP/1.1 and h2c on")
	grpcAddr := fs.String("grpc-addr", "CODENAME_GRPC_ADDR", "127.0.0.1:9090", "address of the gRPC server")
	maxBody := fs.Int64("max-body-bytes", "CODENAME_MAX_BODY_BYTES", gateway.DefaultMaxBodyBytes, "largest unary request body, and largest message of a streaming body")
	drain := fs.Duration("drain-timeout", "CODENAME_DRAIN_TIMEOUT", 10*time.Second, "how long shutdown waits for requests in flight")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}

	logger := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "gateway")
	// The gRPC server runs beside the gateway on a trusted network, so the
	// hop is cleartext HTTP/2; TLS ends at HAProxy.
	conn, err := grpc.NewClient("passthrough:///"+*grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("gRPC client: %w", err)
	}
	defer conn.Close()
	h, err := gateway.New(ctx, conn, gateway.Options{MaxBodyBytes: *maxBody})
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	logger.Info("serving REST", "addr", lis.Addr().String(), "grpc_addr", *grpcAddr)
	err = gateway.Serve(ctx, lis, h, *drain)
	logger.Info("stopped")
	return err
}
