// Command codename-server serves the CodenameCreator gRPC service, with
// grpc.health.v1 and server reflection (and GET /healthz for HAProxy on the
// same port), until SIGINT or SIGTERM, then drains. Given -rest-addr, it
// serves the REST gateway there too (co-located mode), calling the service
// in process instead of over the network. Its Prometheus metrics
// are on a separate admin listener, on loopback by default. Given a
// certificate, the gRPC port serves TLS only, and SIGHUP reads the TLS
// files again.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/codename-gateway/codename-gateway/gateway"
	"github.com/codename-gateway/codename-gateway/internal/envflag"
	"github.com/codename-gateway/codename-gateway/internal/logbuf"
	"github.com/codename-gateway/codename-gateway/internal/telemetry"
	"github.com/codename-gateway/codename-gateway/internal/tlsreload"
	"github.com/codename-gateway/codename-gateway/internal/tuning"
	"github.com/codename-gateway/codename-gateway/server"
)

// about opens the help.
const about = "codename-server serves the CodenameCreator gRPC service, with health and reflection (and, given -rest-addr, the REST gateway in the same process), until SIGINT or SIGTERM, then drains."

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "codename-server:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	if err := tuning.Apply(getenv, opts.cpuShare); err != nil {
		return err
	}

	// One line per call: buffered, the lines cost one write per many
	// instead of one each.
	logger, out := logbuf.NewLogger(stderr, "server")
	defer out.Flush()
	// Trace ids flow always; spans are exported only when the OTEL_*
	// environment asks for it.
	stopTraces, err := telemetry.Start(ctx, "codename-server", getenv, logger)
	if err != nil {
		return err
	}
	defer stopTraces()
	cfg := opts.cfg
	cfg.Logger = logger
	if opts.tls.Cert != "" {
		src, err := tlsreload.Load(opts.tls, logger)
		if err != nil {
			return fmt.Errorf("TLS: %w", err)
		}
		cfg.TLS = src.ServerConfig()
		tlsreload.ReloadOnSIGHUP(ctx, src)
	}
	lis, err := net.Listen("tcp", opts.addr)
	if err != nil {
		return fmt.Errorf("gRPC listener: %w", err)
	}
	if opts.restAddr != "" {
		rest, err := restConfig(ctx, opts, logger, out)
		if err != nil {
			lis.Close()
			return err
		}
		cfg.REST = rest
		logger.Info("serving REST (co-located gateway)", "addr", rest.Listener.Addr().String(), "tls", rest.TLS != nil, "client_ca", opts.restTLS.CA != "")
	}
	if opts.adminAddr != "" {
		admin, err := net.Listen("tcp", opts.adminAddr)
		if err != nil {
			lis.Close()
			if cfg.REST != nil {
				cfg.REST.Listener.Close()
			}
			return fmt.Errorf("admin listener: %w", err)
		}
		cfg.MetricsListener = admin // Serve closes it
		logger.Info("serving admin", "addr", admin.Addr().String())
	}
	logger.Info("serving gRPC", "addr", lis.Addr().String(), "stream_interval", cfg.StreamInterval.String(), "tls", cfg.TLS != nil, "client_ca", opts.tls.CA != "")
	err = server.Serve(ctx, lis, cfg)
	logger.Info("stopped")
	return err
}

// options are what the command line and the environment ask for.
type options struct {
	addr      string
	adminAddr string // "" for no admin listener
	tls       tlsreload.Files
	cfg       server.Config
	// The co-located gateway's: no restAddr, no gateway in this process.
	restAddr string
	restTLS  tlsreload.Files
	gateway  gateway.Options
	// cpuShare is how many busy processes share the host's cores (0:
	// Go's own GOMAXPROCS).
	cpuShare int
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	fs := envflag.New(args[0], getenv, stderr)
	fs.About(about)
	// OpenTelemetry's own standard variables (internal/telemetry).
	fs.AlsoReads("OTEL_TRACES_EXPORTER", "otlp to export spans, none never to (unset: export only when an OTLP endpoint is set)")
	fs.AlsoReads("OTEL_EXPORTER_OTLP_ENDPOINT", "the collector to export spans to; the other standard OTEL_* variables (protocol, headers, sampler, service name) apply too")
	addr := fs.String("addr", "CODENAME_GRPC_ADDR", "127.0.0.1:9090", "address to serve gRPC on, and GET /healthz for HAProxy's health checks")
	// Metrics stay off the gRPC port, which HAProxy forwards to: a path
	// rule in front of it is one spelling away from letting them out.
	adminAddr := fs.String("admin-addr", "CODENAME_GRPC_ADMIN_ADDR", "127.0.0.1:9091", "address to serve /metrics and /healthz on, for Prometheus and orchestrators, never through HAProxy (empty: no admin listener)")
	interval := fs.Duration("stream-interval", "CODENAME_STREAM_INTERVAL", time.Second, "pause between codenames on a stream (0: as fast as the client reads)")
	drainDelay := fs.Duration("drain-delay", "CODENAME_DRAIN_DELAY", 2*time.Second, "on shutdown, how long to keep serving with health NOT_SERVING, so that HAProxy moves traffic away first")
	drain := fs.Duration("drain-timeout", "CODENAME_DRAIN_TIMEOUT", 10*time.Second, "how long shutdown waits for calls in flight")
	// A bigger message fails its call with RESOURCE_EXHAUSTED; the server
	// goes on serving everyone else.
	maxRecv := fs.Int("max-recv-bytes", "CODENAME_MAX_RECV_BYTES", server.DefaultMaxRecvMsgSize, "largest gRPC message the server accepts")
	// HAProxy opens another connection when it meets the limit; a client
	// that connects directly waits for one of its streams to end.
	maxStreams := fs.Int("max-streams-per-conn", "CODENAME_MAX_STREAMS_PER_CONN", server.DefaultMaxConcurrentStreams, "most calls and streams open at once on one HTTP/2 connection")
	maxIdle := fs.Duration("max-conn-idle", "CODENAME_MAX_CONN_IDLE", server.DefaultMaxConnectionIdle, "close a connection that has had no call for this long (negative: never)")
	// Clients that find replicas by DNS look them up again when they
	// reconnect, so that a new replica gets its share.
	maxAge := fs.Duration("max-conn-age", "CODENAME_MAX_CONN_AGE", server.DefaultMaxConnectionAge, "ask clients to reconnect once their connection is this old (negative: never)")
	maxAgeGrace := fs.Duration("max-conn-age-grace", "CODENAME_MAX_CONN_AGE_GRACE", server.DefaultMaxConnectionAgeGrace, "how long the calls and streams of a connection past -max-conn-age may go on before it is closed (negative: no limit)")
	// Read again on SIGHUP and whenever they change, so that rotating
	// them needs no restart.
	tlsCert := fs.String("tls-cert", "CODENAME_GRPC_TLS_CERT", "", "PEM certificate chain: serve the gRPC port (gRPC and /healthz) over TLS only, ALPN h2 and http/1.1 (empty: cleartext)")
	tlsKey := fs.String("tls-key", "CODENAME_GRPC_TLS_KEY", "", "PEM private key of -tls-cert")
	tlsClientCA := fs.String("tls-client-ca", "CODENAME_GRPC_TLS_CLIENT_CA", "", "PEM CA certificates: with -tls-cert, accept only clients whose certificate chains to them (mutual TLS)")
	cpuShare := tuning.Flags(fs)
	rest := defineRESTFlags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return options{}, err
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return options{}, fmt.Errorf("-tls-cert %q and -tls-key %q: give both or neither", *tlsCert, *tlsKey)
	}
	if *tlsClientCA != "" && *tlsCert == "" {
		return options{}, fmt.Errorf("-tls-client-ca needs -tls-cert and -tls-key")
	}
	if *maxStreams < 1 || int64(*maxStreams) > math.MaxUint32 {
		return options{}, fmt.Errorf("-max-streams-per-conn %d: want 1 to %d", *maxStreams, uint32(math.MaxUint32))
	}
	restTLS, gw, err := rest.check()
	if err != nil {
		return options{}, err
	}
	return options{
		cpuShare:  *cpuShare,
		restAddr:  *rest.addr,
		restTLS:   restTLS,
		gateway:   gw,
		addr:      *addr,
		adminAddr: *adminAddr,
		tls:       tlsreload.Files{Cert: *tlsCert, Key: *tlsKey, CA: *tlsClientCA},
		cfg: server.Config{
			StreamInterval:        *interval,
			DrainDelay:            *drainDelay,
			DrainTimeout:          *drain,
			MaxRecvMsgSize:        *maxRecv,
			MaxConcurrentStreams:  uint32(*maxStreams),
			MaxConnectionIdle:     *maxIdle,
			MaxConnectionAge:      *maxAge,
			MaxConnectionAgeGrace: *maxAgeGrace,
		},
	}, nil
}
