package server

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Defaults of the per-connection limits, for a server that any client on
// the network may reach (grpc-go's own defaults are no limits at all).
const (
	// DefaultMaxConcurrentStreams bounds what one connection may cost
	// (about 18 KB a held stream, bench/results). HAProxy reads it from
	// the server's SETTINGS and opens another connection when one is
	// full, but a gateway keeps one connection per replica, and grpc-go
	// holds a call back for as long as that connection is full: so the
	// limit must exceed what HAProxy lets one gateway hold at once (its
	// two stream pools' CODENAME_SERVER_MAXSTREAMS, 10000 each, and
	// CODENAME_SERVER_MAXCONN unary calls, 500, and the gateway's health
	// Watch), or a gateway's held REST streams stop its unary calls and
	// its /healthz (e2e TestHeldRESTStreamsLeaveRoomForCalls). HAProxy's
	// per-replica limits, not this one, bound the server's load.
	DefaultMaxConcurrentStreams = 1 << 15
	// DefaultMaxConnectionIdle closes a connection with no call for that
	// long: a client that went away without a word stops costing a socket.
	DefaultMaxConnectionIdle = 5 * time.Minute
	// DefaultMaxConnectionAge makes every client reconnect at least this
	// often, so that clients that find replicas by DNS spread onto new
	// replicas instead of staying on the ones they met first.
	DefaultMaxConnectionAge = 30 * time.Minute
	// DefaultMaxConnectionAgeGrace is how long calls of a connection past
	// its age have to finish before the connection is closed: a stream
	// then ends with UNAVAILABLE, which clients take as a cue to reconnect.
	DefaultMaxConnectionAgeGrace = 5 * time.Minute
)

const (
	// pingInterval and pingTimeout find a client that vanished without
	// closing its connection (a host that lost power, a cut NAT mapping)
	// while it holds a stream, which the idle limit does not see.
	pingInterval = 2 * time.Minute
	pingTimeout  = 20 * time.Second
	// minClientPingInterval is the most often a client may ping. Clients
	// such as the gateway ping every 30 s to notice a vanished replica,
	// also between calls; a client that pings more often than this is
	// told too_many_pings and disconnected, so pings cannot be a flood.
	minClientPingInterval = 10 * time.Second
)

// connectionOptions are the per-connection limits of cfg, whose zero
// fields must already hold their defaults.
func connectionOptions(cfg Config) []grpc.ServerOption {
	minPing := cfg.testMinPingInterval
	if minPing <= 0 {
		minPing = minClientPingInterval
	}
	return []grpc.ServerOption{
		grpc.MaxConcurrentStreams(cfg.MaxConcurrentStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: minPing, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle:     orNever(cfg.MaxConnectionIdle),
			MaxConnectionAge:      orNever(cfg.MaxConnectionAge),
			MaxConnectionAgeGrace: orNever(cfg.MaxConnectionAgeGrace),
			Time:                  pingInterval,
			Timeout:               pingTimeout,
		}),
	}
}

// orNever turns a negative limit, which Config documents as none, into
// the zero that keepalive.ServerParameters reads as none.
func orNever(d time.Duration) time.Duration {
	return max(d, 0)
}

// withLimitDefaults fills in the zero limits of cfg.
func withLimitDefaults(cfg Config) Config {
	if cfg.MaxConcurrentStreams == 0 {
		cfg.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if cfg.MaxConnectionIdle == 0 {
		cfg.MaxConnectionIdle = DefaultMaxConnectionIdle
	}
	if cfg.MaxConnectionAge == 0 {
		cfg.MaxConnectionAge = DefaultMaxConnectionAge
	}
	if cfg.MaxConnectionAgeGrace == 0 {
		cfg.MaxConnectionAgeGrace = DefaultMaxConnectionAgeGrace
	}
	return cfg
}
