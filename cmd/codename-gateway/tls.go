package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/codename-gateway/codename-gateway/internal/envflag"
	"github.com/codename-gateway/codename-gateway/internal/tlsreload"
)

// defaultGRPCServerName is the name the servers' certificates carry,
// whatever address or DNS name a deployment reaches them by.
const defaultGRPCServerName = "codename-server"

// tlsFlagValues are the TLS flags as parsed, not yet checked.
type tlsFlagValues struct {
	cert, key, clientCA                       *string
	grpcCA, grpcServerName, grpcCert, grpcKey *string
}

// defineTLSFlags defines the flags of both TLS hops: from HAProxy to the
// gateway, and from the gateway to the servers. Every file is read again
// on SIGHUP and whenever it changes, so that rotating one needs no restart.
func defineTLSFlags(fs *envflag.Set) tlsFlagValues {
	return tlsFlagValues{
		cert:     fs.String("tls-cert", "CODENAME_GATEWAY_TLS_CERT", "", "PEM certificate chain: serve HTTPS only, ALPN h2 and http/1.1 (empty: HTTP/1.1 and h2c in cleartext)"),
		key:      fs.String("tls-key", "CODENAME_GATEWAY_TLS_KEY", "", "PEM private key of -tls-cert"),
		clientCA: fs.String("tls-client-ca", "CODENAME_GATEWAY_TLS_CLIENT_CA", "", "PEM CA certificates: with -tls-cert, accept only clients whose certificate chains to them (mutual TLS)"),
		grpcCA:   fs.String("grpc-tls-ca", "CODENAME_GRPC_TLS_CA", "", "PEM CA certificates: reach the gRPC servers over TLS and accept only certificates that chain to them (empty: cleartext)"),
		// The servers are reached by addresses that differ per
		// deployment; their certificates carry this one name instead.
		grpcServerName: fs.String("grpc-tls-server-name", "CODENAME_GRPC_TLS_SERVER_NAME", defaultGRPCServerName, "name the gRPC servers' certificates must be valid for"),
		grpcCert:       fs.String("grpc-client-cert", "CODENAME_GATEWAY_CLIENT_CERT", "", "PEM certificate chain the gateway presents to the gRPC servers (mutual TLS; needs -grpc-tls-ca)"),
		grpcKey:        fs.String("grpc-client-key", "CODENAME_GATEWAY_CLIENT_KEY", "", "PEM private key of -grpc-client-cert"),
	}
}

// tlsFiles are the TLS settings of both hops, checked.
type tlsFiles struct {
	serve      tlsreload.Files // as a server; no Cert means cleartext
	grpc       tlsreload.Files // as a client of the servers; no CA means cleartext
	serverName string
}

func (v tlsFlagValues) files() (tlsFiles, error) {
	f := tlsFiles{
		serve:      tlsreload.Files{Cert: *v.cert, Key: *v.key, CA: *v.clientCA},
		grpc:       tlsreload.Files{Cert: *v.grpcCert, Key: *v.grpcKey, CA: *v.grpcCA},
		serverName: *v.grpcServerName,
	}
	var errs []error
	if (f.serve.Cert == "") != (f.serve.Key == "") {
		errs = append(errs, errors.New("-tls-cert and -tls-key: give both or neither"))
	}
	if f.serve.CA != "" && f.serve.Cert == "" {
		errs = append(errs, errors.New("-tls-client-ca needs -tls-cert and -tls-key"))
	}
	if (f.grpc.Cert == "") != (f.grpc.Key == "") {
		errs = append(errs, errors.New("-grpc-client-cert and -grpc-client-key: give both or neither"))
	}
	if f.grpc.Cert != "" && f.grpc.CA == "" {
		errs = append(errs, errors.New("-grpc-client-cert needs -grpc-tls-ca"))
	}
	if f.grpc.CA != "" && f.serverName == "" {
		errs = append(errs, errors.New("-grpc-tls-server-name is empty"))
	}
	return f, errors.Join(errs...)
}

// load reads the files and returns the gateway's server config (nil for
// cleartext) and the credentials of its hop to the servers; both follow
// the files until ctx ends.
func (f tlsFiles) load(ctx context.Context, logger *slog.Logger) (*tls.Config, credentials.TransportCredentials, error) {
	var (
		serve   *tls.Config
		creds   = insecure.NewCredentials()
		sources []*tlsreload.Source
	)
	if f.serve.Cert != "" {
		src, err := tlsreload.Load(f.serve, logger)
		if err != nil {
			return nil, nil, fmt.Errorf("TLS: %w", err)
		}
		serve = src.ServerConfig()
		sources = append(sources, src)
	}
	if f.grpc.CA != "" {
		src, err := tlsreload.Load(f.grpc, logger)
		if err != nil {
			return nil, nil, fmt.Errorf("gRPC TLS: %w", err)
		}
		creds = credentials.NewTLS(src.ClientConfig(f.serverName))
		sources = append(sources, src)
	}
	tlsreload.ReloadOnSIGHUP(ctx, sources...)
	return serve, creds, nil
}
