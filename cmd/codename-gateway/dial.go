package main

import (
	"context"
	"net"
	"strings"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/health" // client-side health checking, for healthCheckConfig
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/codename-gateway/codename-gateway/internal/telemetry"
)

// dial connects to every gRPC replica and balances calls across them, one
// call at a time. Each replica's grpc.health.v1 status is watched, so a
// replica that starts draining (NOT_SERVING) gets no new calls, and a unary
// call that fails with UNAVAILABLE on a lost replica is tried again on
// another (the unary calls change nothing, so that is safe). creds secure
// the hop, health checks included, since they share the connections.
//
// addrs is a list of host:port, or one gRPC target such as
// dns:///codename-server:9090 whose records list the replicas.
func dial(addrs []string, reg prometheus.Registerer, creds credentials.TransportCredentials) (*grpc.ClientConn, error) {
	metrics := grpcprom.NewClientMetrics(grpcprom.WithClientHandlingTimeHistogram())
	reg.MustRegister(metrics)
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithKeepaliveParams(clientKeepalive),
		grpc.WithContextDialer(dialTCP),
		grpc.WithConnectParams(reconnect),
		grpc.WithChainUnaryInterceptor(metrics.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(metrics.StreamClientInterceptor()),
		// Fixed flow-control windows, as the server has (server/grpcserver.go):
		// grpc-go's bandwidth-delay estimate would ping the server on the
		// first answer data after each acknowledged ping, a ping and its ack
		// per call on calls one after another, to size windows for bulk data
		// that codenames never are.
		grpc.WithStaticStreamWindowSize(64 << 10),
		grpc.WithStaticConnWindowSize(1 << 20),
	}
	// Each call carries its REST request's trace as a traceparent, so the
	// server logs the id that HAProxy and the gateway logged.
	opts = append(opts, telemetry.DialOptions()...)
	if len(addrs) == 1 && strings.Contains(addrs[0], ":///") {
		return grpc.NewClient(addrs[0], opts...)
	}
	r := manual.NewBuilderWithScheme("codename")
	state := resolver.State{}
	for _, a := range addrs {
		state.Addresses = append(state.Addresses, resolver.Address{Addr: strings.TrimSpace(a)})
	}
	r.InitialState(state)
	return grpc.NewClient(r.Scheme()+":///codename-servers", append(opts, grpc.WithResolvers(r))...)
}

// A replica whose host vanished (power, a partition, a cut link) sends no
// FIN or RST: its connection looks open, and the calls and streams on it
// wait in vain, until something notices the silence. Two things do, both
// bounded so that a stream on a lost replica ends within about 5 s with
// UNAVAILABLE (e2e TestHostVanishes):
//   - TCP keepalive probes after lostAfterIdle without a packet from the
//     replica, every lostProbeInterval, and the kernel drops the connection
//     once lostAfter has passed with a probe unanswered;
//   - TCP_USER_TIMEOUT (grpc-go sets it to the keepalive Timeout) drops it
//     when data sent, such as a call, stays unacknowledged for lostAfter,
//     which keepalive probes do not cover.
//
// gRPC's own pings are the third line, for a replica whose kernel answers
// but whose process hangs. grpc-go pings no more often than every 10 s,
// and the server closes the connection of a client that pings more often
// than that (its enforcement policy's MinTime, GOAWAY too_many_pings), so
// they cannot be the fast one.
const (
	lostAfterIdle     = 2 * time.Second
	lostProbeInterval = time.Second
	lostAfter         = 5 * time.Second
)

// clientKeepalive pings a replica's connection after 30 s without traffic
// and drops it if the ping gets no answer within lostAfter.
var clientKeepalive = keepalive.ClientParameters{
	Time:                30 * time.Second,
	Timeout:             lostAfter,
	PermitWithoutStream: true,
}

// dialer opens the TCP connections to the replicas, with the keepalive
// probes above.
var dialer = &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{
	Enable:   true,
	Idle:     lostAfterIdle,
	Interval: lostProbeInterval,
	Count:    int((lostAfter - lostAfterIdle) / lostProbeInterval),
}}

func dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	return dialer.DialContext(ctx, "tcp", addr)
}

// reconnect bounds how long a replica that came back waits for the
// gateway: grpc-go's defaults back off up to 2 minutes between attempts,
// and wait 20 s for a connection to a host that drops the handshake.
var reconnect = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 250 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
	MinConnectTimeout: 3 * time.Second,
}

// serviceConfig balances per call over healthy replicas and retries the
// idempotent unary calls on UNAVAILABLE.
const serviceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "healthCheckConfig": {"serviceName": ""},
  "methodConfig": [{
    "name": [
      {"service": "codename.v1.CodenameCreator", "method": "GetCodename"},
      {"service": "codename.v1.CodenameCreator", "method": "ListCategories"}
    ],
    "retryPolicy": {
      "maxAttempts": 3,
      "initialBackoff": "0.01s",
      "maxBackoff": "0.1s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`
