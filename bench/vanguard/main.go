// Command codename-vanguard is the benchmark's yardstick for the REST
// gateway: the same REST routes (the google.api.http annotations of
// codename.proto) transcoded by connectrpc's vanguard-go instead of
// grpc-gateway, in front of the same gRPC server, reached the same way (h2c).
// It is part of the bench module, so that the project's go.mod does not
// depend on vanguard-go for a benchmark.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"connectrpc.com/vanguard"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

func main() {
	if err := run(context.Background(), os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "codename-vanguard:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8082", "address to serve REST on (HTTP/1.1 and h2c)")
	grpcAddr := fs.String("grpc-addr", "127.0.0.1:9090", "the gRPC server")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}

	// The transcoded calls go to the gRPC server as gRPC over cleartext
	// HTTP/2, through a reverse proxy: vanguard-go transcodes to an
	// http.Handler, and this one is the remote server.
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: *grpcAddr})
		},
		Transport: &http.Transport{Protocols: &protocols, MaxIdleConnsPerHost: 100},
	}
	svc := vanguard.NewService(codenamev1.CodenameCreator_ServiceDesc.ServiceName, proxy,
		vanguard.WithTargetProtocols(vanguard.ProtocolGRPC),
		vanguard.WithTargetCodecs(vanguard.CodecProto),
	)
	transcoder, err := vanguard.NewTranscoder([]*vanguard.Service{svc})
	if err != nil {
		return err
	}

	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	var served http.Protocols
	served.SetHTTP1(true)
	served.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: transcoder, Protocols: &served, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
