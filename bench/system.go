package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// repoRoot returns the folder of the codename-gateway module, which the
// bench module replaces with its parent folder: the binaries, the HAProxy
// config and the HAProxy builds in bin/ are found there, from whatever
// folder the command or its tests run in.
func repoRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/codename-gateway/codename-gateway").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m: the codename-gateway module: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// build compiles the binaries into dir, the same way the end-to-end tests
// do, so that the benchmark measures what ships and not a stale bin/.
func build(ctx context.Context, root, dir string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./cmd/...")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/...: %w\n%s", err, out)
	}
	return nil
}

// system is one running stack (server, gateway, HAProxy) and where to reach
// each part.
type system struct {
	st  *stack.Stack
	cfg stack.Config
	log *tailBuffer
	// colocated is true when the gateway runs inside the server
	// (CODENAME_GATEWAY_MODE=colocated): there is no gateway process, and
	// the server's admin listener serves the gateway's metrics too.
	colocated bool
}

// stackEnv is the environment every stack of the benchmark starts with.
// Stopping between figures should not wait for the 2 s drain meant for
// production. The hops behind HAProxy are cleartext unless env says
// otherwise, as in the recorded results; the unary step starts a second
// stack with CODENAME_BACKEND_TLS=mutual to set TLS beside it. The edge's
// per-client limits are sized for a public deployment; the load here comes
// from one address and holds up to 50k streams, so they are raised (not
// switched off) to fit it.
var stackEnv = []string{"CODENAME_DRAIN_DELAY=0s", "CODENAME_DRAIN_TIMEOUT=2s", "CODENAME_BACKEND_TLS=off",
	"CODENAME_STREAMS_PER_SOURCE=1000000", "CODENAME_CONN_PER_SOURCE=100000", "CODENAME_SERVER_MAXSTREAMS=1000000",
	"CODENAME_SERVER_MAXCONN=10000", "CODENAME_MAX_STREAMS_PER_CONN=100000"}

// startSystem starts a stack of one replica on free loopback ports, with
// HAProxy running haproxyConfig. env is given to every child, for example
// CODENAME_STREAM_INTERVAL=0.
func startSystem(ctx context.Context, binDir, stateDir, haproxyConfig string, env ...string) (*system, error) {
	log := &tailBuffer{max: 4 << 20}
	cfg := stack.Config{
		BinDir:        binDir,
		HAProxyConfig: haproxyConfig,
		StateDir:      stateDir,
		Env:           append(slices.Clone(stackEnv), env...),
		Output:        log,
	}
	st, err := stack.StartOnFreePorts(ctx, cfg, 1)
	if err != nil {
		return nil, fmt.Errorf("start stack: %w\n%s", err, log.String())
	}
	cfg = st.Config()
	return &system{st: st, cfg: cfg, log: log, colocated: lastEnv(cfg.Env, stack.GatewayModeEnv) == stack.Colocated}, nil
}

// lastEnv returns the value of the last key=value in env, as a child that
// gets env sees it.
func lastEnv(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if after, ok := strings.CutPrefix(kv, key+"="); ok {
			v = after
		}
	}
	return v
}

// stop stops every process of the stack.
func (s *system) stop() error { return s.st.Stop() }

// stopAfter stops the stack once a measurement is done; a stop that fails
// makes the measurement's error (*err) if it had none. what names the stack.
func (s *system) stopAfter(err *error, what string) {
	if stopErr := s.stop(); stopErr != nil && *err == nil {
		*err = fmt.Errorf("stop %s: %w", what, stopErr)
	}
}

// starter starts a fresh stack with env added to its environment.
type starter func(ctx context.Context, env ...string) (*system, error)

// onFreshStack starts a stack with env, measures on it, and stops it.
func onFreshStack[T any](ctx context.Context, start starter, env []string, measure func(*system) (T, error)) (_ T, err error) {
	sys, err := start(ctx, env...)
	if err != nil {
		var none T
		return none, err
	}
	defer sys.stopAfter(&err, "the stack")
	return measure(sys)
}

// grpcAddr is the gRPC server itself; proxyAddr is HAProxy's cleartext
// listener (HTTP/1.1 and h2c), where gRPC and REST both arrive.
func (s *system) grpcAddr() string { return s.cfg.GRPCAddrs[0] }

// serverAdminAddr serves the gRPC server's Prometheus metrics.
func (s *system) serverAdminAddr() string { return s.cfg.GRPCAdminAddrs[0] }
func (s *system) proxyAddr() string       { return s.cfg.HTTPAddr }

// statsAddr serves HAProxy's Prometheus metrics.
func (s *system) statsAddr() string { return s.cfg.StatsAddr }

// The names of the process groups whose CPU and memory are read.
const (
	procServer  = "server"
	procGateway = "gateway"
	procHAProxy = "haproxy"
	// procLoad is the load generator: h2load, or this harness.
	procLoad = "load"
)

func (s *system) server() group { return single(procServer, s.st.Process("server-1").PID()) }

// gateway is the gateway process; a co-located stack has none, and asking
// for it there is a mistake of the caller's.
func (s *system) gateway() group {
	if s.colocated {
		panic("bench: a co-located stack has no gateway process")
	}
	return single(procGateway, s.st.Process("gateway-1").PID())
}

// goGroups are the stack's Go processes: the server and, when separate,
// the gateway.
func (s *system) goGroups() []group {
	if s.colocated {
		return []group{s.server()}
	}
	return []group{s.server(), s.gateway()}
}

// restAdminAddr serves the metrics of the process that serves REST: the
// gateway's own, or the server's when the gateway is inside it.
func (s *system) restAdminAddr() string {
	if s.colocated {
		return s.serverAdminAddr()
	}
	return s.cfg.GatewayAdminAddrs[0]
}

// haproxy is HAProxy's workers: the master (-W) only supervises them.
func (s *system) haproxy() group {
	return workersOf(procHAProxy, s.st.Process("haproxy").PID())
}

// tailBuffer keeps the last max bytes written to it: enough of the
// children's output to explain a failure, without keeping the one log line
// per request that a long run produces.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	// Trimming only past twice the size keeps each write cheap: the
	// children write a line per request.
	if len(t.b) > 2*t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	// Start at a whole line.
	if i := bytes.IndexByte(t.b, '\n'); i >= 0 && len(t.b) > t.max {
		return string(t.b[i+1:])
	}
	return string(t.b)
}

// logLines returns up to n of the last lines of the children's output that
// contain substr.
func (s *system) logLines(substr string, n int) []string {
	var found []string
	for line := range strings.Lines(s.log.String()) {
		if strings.Contains(line, substr) {
			found = append(found, strings.TrimSpace(line))
		}
	}
	return found[max(0, len(found)-n):]
}

// settle waits a moment for work started by the previous measurement
// (closing connections, garbage collection) to die down.
func settle(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
