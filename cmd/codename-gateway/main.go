// Command codename-gateway serves the REST gateway (JSON to gRPC, streaming
// as newline-delimited JSON), its health endpoint, OpenAPI document and web
// page, over HTTP/1.1 and h2c (or, given a certificate, HTTPS with h2 and
// http/1.1), until SIGINT or SIGTERM; and, on a separate admin listener,
// its Prometheus metrics and health. Its hop to the gRPC servers is TLS
// when given a CA for them; SIGHUP reads every TLS file again.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/codename-gateway/codename-gateway/gateway"
	"github.com/codename-gateway/codename-gateway/internal/envflag"
	"github.com/codename-gateway/codename-gateway/internal/logbuf"
	"github.com/codename-gateway/codename-gateway/internal/telemetry"
	"github.com/codename-gateway/codename-gateway/internal/tuning"
)

// about opens the help.
const about = "codename-gateway serves the REST gateway of the CodenameCreator gRPC service (JSON, streams, OpenAPI, the web page) until SIGINT or SIGTERM, then drains."

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "codename-gateway:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	fs := envflag.New(args[0], getenv, stderr)
	fs.About(about)
	// OpenTelemetry's own standard variables (internal/telemetry).
	fs.AlsoReads("OTEL_TRACES_EXPORTER", "otlp to export spans, none never to (unset: export only when an OTLP endpoint is set)")
	fs.AlsoReads("OTEL_EXPORTER_OTLP_ENDPOINT", "the collector to export spans to; the other standard OTEL_* variables (protocol, headers, sampler, service name) apply too")
	addr := fs.String("addr", "CODENAME_GATEWAY_ADDR", "127.0.0.1:8081", "address to serve HTTP/1.1 and h2c on")
	adminAddr := fs.String("admin-addr", "CODENAME_GATEWAY_ADMIN_ADDR", "127.0.0.1:8082", "address to serve /metrics and /healthz on, for Prometheus and orchestrators, never through HAProxy (empty: no admin listener)")
	single := getenv("CODENAME_GRPC_ADDR")
	if single == "" {
		single = "127.0.0.1:9090"
	}
	grpcAddrs := fs.String("grpc-addr", "CODENAME_GRPC_ADDRS", single, "addresses of the gRPC server replicas, comma-separated (default $CODENAME_GRPC_ADDR)")
	maxBody := fs.Int64("max-body-bytes", "CODENAME_MAX_BODY_BYTES", gateway.DefaultMaxBodyBytes, "largest unary request body, and largest message of a streaming body")
	callTimeout := fs.Duration("call-timeout", "CODENAME_CALL_TIMEOUT", gateway.DefaultCallTimeout, "longest a unary REST call waits for the gRPC server (keep it below HAProxy's timeout server); a shorter Grpc-Timeout header wins; streams have no such bound")
	sseHeartbeat := fs.Duration("sse-heartbeat", "CODENAME_SSE_HEARTBEAT", gateway.DefaultSSEHeartbeat, "longest a Server-Sent Events stream goes without a write before a comment line goes out, so that a client gone behind HAProxy is noticed and idle proxies see traffic (negative: never)")
	corsOrigins := fs.String("cors-origins", "CODENAME_CORS_ORIGINS", "", "origins (scheme://host[:port], comma-separated) whose pages may call the gRPC paths with gRPC-Web or Connect clients; none by default")
	drainDelay := fs.Duration("drain-delay", "CODENAME_DRAIN_DELAY", 2*time.Second, "on shutdown, how long to keep serving with /healthz NOT_SERVING, so that HAProxy moves traffic away first")
	drain := fs.Duration("drain-timeout", "CODENAME_DRAIN_TIMEOUT", 10*time.Second, "how long shutdown waits for requests in flight")
	cpuShare := tuning.Flags(fs)
	tlsFlags := defineTLSFlags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := tuning.Apply(getenv, *cpuShare); err != nil {
		return err
	}
	tlsFiles, err := tlsFlags.files()
	if err != nil {
		return err
	}
	origins, err := parseOrigins(*corsOrigins)
	if err != nil {
		return err
	}

	// One line per call: buffered, the lines cost one write per many
	// instead of one each.
	logger, out := logbuf.NewLogger(stderr, "gateway")
	defer out.Flush()
	// Trace ids flow always; spans are exported only when the OTEL_*
	// environment asks for it.
	stopTraces, err := telemetry.Start(ctx, "codename-gateway", getenv, logger)
	if err != nil {
		return err
	}
	defer stopTraces()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	serveTLS, grpcCreds, err := tlsFiles.load(ctx, logger)
	if err != nil {
		return err
	}
	conn, err := dial(strings.Split(*grpcAddrs, ","), reg, grpcCreds)
	if err != nil {
		return fmt.Errorf("gRPC client: %w", err)
	}
	defer conn.Close()
	h, err := gateway.New(ctx, conn, gateway.Options{MaxBodyBytes: *maxBody, CallTimeout: *callTimeout, SSEHeartbeat: *sseHeartbeat, CORSOrigins: origins, Logger: logger, Metrics: reg})
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("REST listener: %w", err)
	}
	defer lis.Close()
	if *adminAddr != "" {
		adminLis, err := net.Listen("tcp", *adminAddr)
		if err != nil {
			return fmt.Errorf("admin listener: %w", err)
		}
		stopAdmin := serveAdmin(adminLis, adminHandler(h, reg), logger)
		// Stopped last, so that the admin /healthz says NOT_SERVING for as
		// long as the REST listener drains.
		defer stopAdmin()
		logger.Info("serving admin", "addr", adminLis.Addr().String())
	}
	logger.Info("serving REST", "addr", lis.Addr().String(), "grpc_addrs", *grpcAddrs,
		"tls", serveTLS != nil, "client_ca", tlsFiles.serve.CA != "", "grpc_tls", tlsFiles.grpc.CA != "", "grpc_client_cert", tlsFiles.grpc.Cert != "")
	d := gateway.Drain{Delay: *drainDelay, Timeout: *drain}
	if serveTLS != nil {
		err = gateway.ServeTLS(ctx, lis, h, d, serveTLS)
	} else {
		err = gateway.Serve(ctx, lis, h, d)
	}
	logger.Info("stopped")
	return err
}

// adminHandler serves the metrics, which the public handler does not (a
// path rule in front of a shared port is one percent-encoding away from
// leaking them), and the gateway's own /healthz, for whoever watches the
// process from inside.
func adminHandler(gw http.Handler, reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /healthz", gw)
	return mux
}

// serveAdmin serves h on lis until the returned function is called.
func serveAdmin(lis net.Listener, h http.Handler, logger *slog.Logger) (stop func()) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("admin listener stopped", "err", err)
		}
	}()
	return func() {
		_ = srv.Close()
		<-done
	}
}
