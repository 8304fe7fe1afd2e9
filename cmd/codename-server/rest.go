package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/codename-gateway/codename-gateway/gateway"
	"github.com/codename-gateway/codename-gateway/internal/envflag"
	"github.com/codename-gateway/codename-gateway/internal/logbuf"
	"github.com/codename-gateway/codename-gateway/internal/tlsreload"
	"github.com/codename-gateway/codename-gateway/server"
)

// restFlagValues are the co-located gateway's flags as parsed. Each reads
// the environment variable that codename-gateway reads for the same
// setting, so that one environment configures the gateway in either mode.
type restFlagValues struct {
	addr                   *string
	maxBody                *int64
	callTimeout            *time.Duration
	sseHeartbeat           *time.Duration
	corsOrigins            *string
	tlsCert, tlsKey, tlsCA *string
}

func defineRESTFlags(fs *envflag.Set) restFlagValues {
	return restFlagValues{
		// The mode switch: a gateway in this process, on its own
		// listener, so that HAProxy still routes by content type.
		addr:         fs.String("rest-addr", "CODENAME_REST_ADDR", "", "address to serve the REST gateway on from this process (HTTP/1.1 and h2c; co-located mode), calling the service in process; empty: no gateway here, run codename-gateway"),
		maxBody:      fs.Int64("max-body-bytes", "CODENAME_MAX_BODY_BYTES", gateway.DefaultMaxBodyBytes, "with -rest-addr: largest unary request body, and largest message of a streaming body"),
		callTimeout:  fs.Duration("call-timeout", "CODENAME_CALL_TIMEOUT", gateway.DefaultCallTimeout, "with -rest-addr: longest a unary REST call may take (keep it below HAProxy's timeout server); a shorter Grpc-Timeout header wins"),
		sseHeartbeat: fs.Duration("sse-heartbeat", "CODENAME_SSE_HEARTBEAT", gateway.DefaultSSEHeartbeat, "with -rest-addr: longest a Server-Sent Events stream goes without a write before a comment line goes out (negative: never)"),
		corsOrigins:  fs.String("cors-origins", "CODENAME_CORS_ORIGINS", "", "with -rest-addr: origins (scheme://host[:port], comma-separated) whose pages may call the gRPC paths with gRPC-Web or Connect clients; none by default"),
		// The names codename-gateway's certificate carries, not the gRPC
		// port's: HAProxy checks the gateway backend for its own name.
		tlsCert: fs.String("rest-tls-cert", "CODENAME_GATEWAY_TLS_CERT", "", "with -rest-addr: PEM certificate chain to serve the REST listener over TLS only, ALPN h2 and http/1.1 (empty: cleartext)"),
		tlsKey:  fs.String("rest-tls-key", "CODENAME_GATEWAY_TLS_KEY", "", "PEM private key of -rest-tls-cert"),
		tlsCA:   fs.String("rest-tls-client-ca", "CODENAME_GATEWAY_TLS_CLIENT_CA", "", "PEM CA certificates: with -rest-tls-cert, accept only REST clients whose certificate chains to them (mutual TLS)"),
	}
}

// check returns the REST listener's TLS files and the gateway's options.
func (v restFlagValues) check() (tlsreload.Files, gateway.Options, error) {
	files := tlsreload.Files{Cert: *v.tlsCert, Key: *v.tlsKey, CA: *v.tlsCA}
	var errs []error
	if (files.Cert == "") != (files.Key == "") {
		errs = append(errs, errors.New("-rest-tls-cert and -rest-tls-key: give both or neither"))
	}
	if files.CA != "" && files.Cert == "" {
		errs = append(errs, errors.New("-rest-tls-client-ca needs -rest-tls-cert and -rest-tls-key"))
	}
	origins, err := gateway.ParseOrigins(*v.corsOrigins)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return tlsreload.Files{}, gateway.Options{}, err
	}
	return files, gateway.Options{
		MaxBodyBytes: *v.maxBody,
		CallTimeout:  *v.callTimeout,
		SSEHeartbeat: *v.sseHeartbeat,
		CORSOrigins:  origins,
	}, nil
}

// restConfig opens the co-located gateway's listener and reads its TLS
// files (again on SIGHUP). Its lines go to the same buffered output as the
// server's, marked as the gateway's.
func restConfig(ctx context.Context, opts options, logger *slog.Logger, out *logbuf.Writer) (*server.RESTConfig, error) {
	rc := &server.RESTConfig{Gateway: opts.gateway}
	if opts.restTLS.Cert != "" {
		src, err := tlsreload.Load(opts.restTLS, logger)
		if err != nil {
			return nil, fmt.Errorf("REST TLS: %w", err)
		}
		rc.TLS = src.ServerConfig()
		tlsreload.ReloadOnSIGHUP(ctx, src)
	}
	lis, err := net.Listen("tcp", opts.restAddr)
	if err != nil {
		return nil, fmt.Errorf("REST listener: %w", err)
	}
	rc.Listener = lis
	rc.Gateway.Logger = gatewayLogger(out)
	return rc, nil
}

// gatewayLogger writes the co-located gateway's request lines as
// codename-gateway would, through the server's buffer.
func gatewayLogger(out *logbuf.Writer) *slog.Logger {
	return slog.New(logbuf.FlushOn(slog.NewTextHandler(out, nil), out, slog.LevelWarn)).With("component", "gateway")
}
