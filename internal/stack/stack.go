// Package stack runs the whole system as child processes: the gRPC server,
// the REST gateway, and HAProxy with haproxy/haproxy.cfg in master-worker
// mode. The run command and the end-to-end tests both start it, so the
// tests exercise exactly what a developer runs.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/devtls"
)

// Config says where the parts are and where they listen.
type Config struct {
	// BinDir holds the codename-server and codename-gateway binaries.
	BinDir string
	// HAProxy is the haproxy executable; empty means HAProxyBinary().
	HAProxy string
	// HAProxyConfig is the path of haproxy.cfg.
	HAProxyConfig string
	// StateDir keeps the development CA and certificates, under tls/.
	StateDir string

	HTTPSAddr, HTTPAddr, StatsAddr string
	// GRPCAddrs and GatewayAddrs are where the replicas of the gRPC server
	// and of the gateway listen, one replica per address (at most
	// MaxReplicas, the number of server lines haproxy.cfg has).
	GRPCAddrs, GatewayAddrs []string
	// GRPCAdminAddrs and GatewayAdminAddrs, if set, hold one address per
	// replica where it serves its metrics (and health) to operators only;
	// HAProxy never forwards there. Unset, each process uses its default.
	GRPCAdminAddrs, GatewayAdminAddrs []string

	// Env is added to every child's environment (for example
	// CODENAME_STREAM_INTERVAL=100ms).
	Env []string
	// APIKey, if set, is the key HAProxy requires of every caller. Only
	// HAProxy's environment gets it.
	APIKey string
	// Output receives every child's output, each line prefixed with the
	// child's name. Nil discards it.
	Output io.Writer
	// ReadyTimeout bounds the wait for the whole system to answer; zero
	// means 30 seconds.
	ReadyTimeout time.Duration
	// GatewayAddrs are the REST gateway's listeners either way: a gateway
	// process's in the separate mode, a server's own in the co-located
	// mode ($CODENAME_GATEWAY_MODE, mode.go), where GatewayAdminAddrs go
	// unused (the servers' admin listeners serve the gateway's metrics).
	//
	// GatewayTarget is the gRPC target the gateways dial, such as
	// dns:///codename-server:9090; empty means the servers' addresses.
	GatewayTarget string
	// Netns, if set, names the network namespace each child ("server-1",
	// "gateway-2", "haproxy") runs in, empty for this one's: the child is
	// started as `ip netns exec NS argv...`, which execs argv, so that the
	// child's PID is the one the stack signals. See Network.
	Netns func(child string) string
}

// MaxReplicas is how many replicas of each kind haproxy.cfg can address.
const MaxReplicas = 4

// Stack is a running system.
type Stack struct {
	cfg   Config
	TLS   devtls.Files
	procs []*Process
	// exited receives the first child that exits on its own.
	exited chan *Process
	// loaded notes HAProxy's "Loading success.": until then a 200 on
	// its port may come from another program that holds the port.
	loaded *noticeWriter
	// reloads counts HAProxy's "Reloading HAProxy", its acknowledgement
	// of SIGUSR2.
	reloads *noticeWriter
}

// Start creates the TLS files if needed, starts the servers, the gateways
// (unless $CODENAME_GATEWAY_MODE in cfg.Env or the environment is
// colocated, when the servers serve REST themselves) and HAProxy, each with
// the environment plan gives it (env.go), and returns once a request
// through HAProxy reaches the gRPC server's health check. On error,
// whatever was started is stopped again.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	if cfg.HAProxy == "" {
		cfg.HAProxy = HAProxyBinary()
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 30 * time.Second
	}
	if cfg.Output == nil {
		cfg.Output = io.Discard
	}
	files, err := devtls.Ensure(filepath.Join(cfg.StateDir, "tls"))
	if err != nil {
		return nil, err
	}
	n := len(cfg.GRPCAddrs)
	if n == 0 || n > MaxReplicas || len(cfg.GatewayAddrs) != n {
		return nil, fmt.Errorf("want 1 to %d replicas, as many gateways as servers; got %d and %d", MaxReplicas, n, len(cfg.GatewayAddrs))
	}
	children, err := plan(cfg, files)
	if err != nil {
		return nil, err
	}
	s := &Stack{cfg: cfg, TLS: files, exited: make(chan *Process, 2*n+1)}
	s.reloads = &noticeWriter{w: cfg.Output, needle: []byte("Reloading HAProxy")}
	s.loaded = &noticeWriter{w: s.reloads, needle: []byte("Loading success.")}
	for _, c := range children {
		p, err := s.start(c.name, c.argv, c.env)
		if err != nil {
			s.Stop()
			return nil, err
		}
		s.procs = append(s.procs, p)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.ReadyTimeout)
	defer cancel()
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls /healthz through HAProxy's cleartext listener: a 200 there
// means HAProxy, the gateway and the gRPC server all answer.
func (s *Stack) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	url := "http://" + dialable(s.cfg.HTTPAddr) + "/healthz"
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		select {
		case p := <-s.exited:
			return fmt.Errorf("%s exited while starting: %v", p.Name, p.err)
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %v", s.cfg.ReadyTimeout, last)
		case <-tick.C:
		}
		if s.loaded.seen.Load() == 0 {
			last = errors.New("HAProxy has not loaded its configuration")
			continue
		}
		resp, err := client.Get(url)
		if err != nil {
			last = err
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		last = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
}

// Config returns the configuration the stack runs with.
func (s *Stack) Config() Config { return s.cfg }
