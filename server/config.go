package server

import (
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
)

// Config tunes the server. The zero value is usable, with limits suited to
// a server anyone may reach, but logs nowhere and serves no metrics.
type Config struct {
	// StreamInterval is the pause between codenames on a stream; zero or
	// less sends as fast as the client reads.
	StreamInterval time.Duration
	// DrainDelay is how long the server keeps serving, with its health
	// already NOT_SERVING, before it stops accepting connections: time for
	// HAProxy's health checks to notice and send new calls elsewhere.
	DrainDelay time.Duration
	// DrainTimeout bounds how long Serve waits for calls in flight once it
	// stops accepting, before it closes the remaining connections. Zero
	// means 10 seconds.
	DrainTimeout time.Duration
	// Logger receives one line per finished call. Nil discards them.
	Logger *slog.Logger
	// MaxRecvMsgSize bounds one incoming gRPC message (grpc.MaxRecvMsgSize);
	// a bigger one fails the call with RESOURCE_EXHAUSTED and the server
	// goes on serving. A NameRequest is a few dozen bytes, so the bound is
	// there to keep a hostile client from pinning memory. Zero or less
	// means DefaultMaxRecvMsgSize.
	MaxRecvMsgSize int
	// MetricsListener, if set, serves GET /metrics (Prometheus) and GET
	// /healthz over plain HTTP, for operators only: the gRPC port is
	// reachable through HAProxy, so metrics stay off it. Serve closes it
	// when it returns. Nil serves metrics nowhere.
	MetricsListener net.Listener

	// REST, if set, serves the REST gateway from this process too, on a
	// listener of its own (colocated.go). Nil leaves REST to a separate
	// gateway process.
	REST *RESTConfig

	// TLS, if set, makes the gRPC port serve TLS only, gRPC and GET
	// /healthz alike: the hop from HAProxy or the gateway then crosses a
	// shared network unread. It should offer ALPN h2 and http/1.1 (HAProxy
	// checks health with check-alpn http/1.1), and may require client
	// certificates; tlsreload builds such a config, rotation included. The
	// admin listener stays cleartext, for operators on the host only. Nil
	// serves cleartext.
	TLS *tls.Config

	// MaxConcurrentStreams bounds the calls and streams open at once on
	// one HTTP/2 connection; a client that wants more waits for one to
	// end. Zero means DefaultMaxConcurrentStreams.
	MaxConcurrentStreams uint32
	// MaxConnectionIdle closes a connection that has had no call for that
	// long. Zero means DefaultMaxConnectionIdle; negative, no limit.
	MaxConnectionIdle time.Duration
	// MaxConnectionAge asks a client to reconnect (GOAWAY) once its
	// connection is that old, give or take 10 %. Zero means
	// DefaultMaxConnectionAge; negative, no limit.
	MaxConnectionAge time.Duration
	// MaxConnectionAgeGrace is how long the calls of a connection past
	// MaxConnectionAge may go on before it is closed. Zero means
	// DefaultMaxConnectionAgeGrace; negative, no limit.
	MaxConnectionAgeGrace time.Duration

	// testMinPingInterval replaces minClientPingInterval when positive,
	// so that tests need not wait for it.
	testMinPingInterval time.Duration
	// testUnary, if set, runs last before each unary handler, so that
	// tests can see what a call brings, from the network or in process.
	testUnary grpc.UnaryServerInterceptor
}

// DefaultMaxRecvMsgSize is the largest incoming gRPC message by default:
// 64 KiB, the same bound the REST gateway puts on a JSON body (grpc-go's
// own default is 4 MiB).
const DefaultMaxRecvMsgSize = 64 << 10

// withDefaults fills in the zero fields of cfg that have defaults.
func withDefaults(cfg Config) Config {
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	if cfg.MaxRecvMsgSize <= 0 {
		cfg.MaxRecvMsgSize = DefaultMaxRecvMsgSize
	}
	return withLimitDefaults(cfg)
}
