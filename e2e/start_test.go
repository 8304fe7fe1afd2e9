package e2e

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/devtls"
	"github.com/codename-gateway/codename-gateway/internal/poll"
	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// spec is what a test asks of the system it starts; options set it.
type spec struct {
	replicas      int
	apiKey        string
	env           []string
	haproxyConfig string
	stateDir      string
	// place sets the addresses (and whatever else of the config it
	// needs) itself; unset, the stack takes free loopback ports.
	place func(*stack.Config)
	// hostServers, with onHosts, are the server hosts DNS lists at first.
	hosts       bool
	hostServers []string
	// edge, with edgeOnly, are the gRPC and REST backend addresses of an
	// HAProxy started alone.
	edge []string
}

// option sets part of a spec for start.
type option func(*spec)

// replicas starts n replicas of each kind (at most stack.MaxReplicas).
func replicas(n int) option { return func(sp *spec) { sp.replicas = n } }

// apiKey makes HAProxy require key of every caller.
func apiKey(key string) option { return func(sp *spec) { sp.apiKey = key } }

// withEnv adds variables to every child's environment (limits, intervals,
// telemetry), after the suite's own, so that they win.
func withEnv(kv ...string) option { return func(sp *spec) { sp.env = append(sp.env, kv...) } }

// backendTLS sets CODENAME_BACKEND_TLS (off, on, mutual) for the hops
// behind HAProxy.
func backendTLS(mode string) option { return withEnv("CODENAME_BACKEND_TLS=" + mode) }

// gatewayMode pins the gateway mode (stack.Separate, stack.Colocated)
// whatever the suite's $CODENAME_GATEWAY_MODE (mode_test.go).
func gatewayMode(mode string) option { return withEnv(stack.GatewayModeEnv + "=" + mode) }

// haproxyConfig makes HAProxy read the config file at path instead of
// haproxy/haproxy.cfg.
func haproxyConfig(path string) option { return func(sp *spec) { sp.haproxyConfig = path } }

// stateDir keeps the system's state (its TLS files) in dir instead of a
// folder of the test's own.
func stateDir(dir string) option { return func(sp *spec) { sp.stateDir = dir } }

// placed gives every address itself (f sets them in the config), for a
// test of what happens on given ports; the stack does not try again on
// other ports when one is taken.
func placed(f func(*stack.Config)) option { return func(sp *spec) { sp.place = f } }

// onHosts starts every child on a host of its own of a private network,
// with DNS listing servers (hosts_test.go); the system's hosts field is
// that network. The tests on hosts run in parallel (t.Parallel), two at a
// time after the others: they spend most of their minute or so waiting on
// timers (DNS re-resolution, keepalive, partitions), and each has its own
// namespaces, /24 and ports.
func onHosts(servers ...string) option {
	return func(sp *spec) { sp.hosts, sp.hostServers = true, servers }
}

// edgeOnly starts HAProxy alone, with its gRPC backends at grpcAddr and
// its REST backends at restAddr (a fake backend, another project's
// server); the system has no Stack.
func edgeOnly(grpcAddr, restAddr string) option {
	return func(sp *spec) { sp.edge = []string{grpcAddr, restAddr} }
}

func specOf(opts []option) spec {
	sp := spec{replicas: 1, haproxyConfig: filepath.Join(repoRoot, "haproxy/haproxy.cfg")}
	for _, o := range opts {
		o(&sp)
	}
	return sp
}

// start starts a system of the test's own as opts ask (by default: one
// replica, no API key, haproxy/haproxy.cfg, a new state folder, the
// suite's gateway mode) and returns once HAProxy's checks have passed on
// every backend server. It is stopped when the test ends, and its output
// is shown if the test failed. Tests that only send requests share one
// system (shared); tests that kill, restart, reconfigure or load parts
// start their own.
func start(t testing.TB, opts ...option) *system {
	t.Helper()
	s, err := tryStart(t, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tryStart is start for a test whose system must fail to start: the error
// holds the system's output.
func tryStart(t testing.TB, opts ...option) (*system, error) {
	t.Helper()
	sp := specOf(opts)
	if sp.stateDir == "" {
		sp.stateDir = t.TempDir()
	}
	if sp.edge != nil {
		return startEdge(t, sp)
	}
	var hosts *hostNet
	if sp.hosts {
		hosts = newHostNet(t, &sp)
	}
	s, err := launch(sp)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		if t.Failed() {
			t.Logf("output of the stack:\n%s", s.log.String())
		}
	})
	if hosts != nil {
		s.hosts, hosts.sys = hosts, s
	}
	return s, nil
}

// launch starts the stack sp describes and waits for HAProxy's checks.
// The stack is ready once /healthz answers through be_rest, but a test
// that opens a stream at once goes to be_rest_stream or be_grpc_stream,
// whose first checks may not have run yet or may have just failed (a
// process still starting, or starved for a moment on a loaded machine),
// and then gets HAProxy's 503.
func launch(sp spec) (*system, error) {
	log := new(syncBuffer)
	cfg := stack.Config{
		BinDir:        binDir,
		HAProxyConfig: sp.haproxyConfig,
		StateDir:      sp.stateDir,
		APIKey:        sp.apiKey,
		// A short drain delay keeps the many stops of a test run quick;
		// the drain tests set their own.
		Env:    append([]string{"CODENAME_STREAM_INTERVAL=" + streamInterval.String(), "CODENAME_DRAIN_DELAY=200ms"}, sp.env...),
		Output: log,
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var st *stack.Stack
	var err error
	if sp.place != nil {
		sp.place(&cfg)
		st, err = stack.Start(ctx, cfg)
	} else {
		st, err = stack.StartOnFreePorts(ctx, cfg, sp.replicas)
	}
	if err != nil {
		return nil, fmt.Errorf("start stack: %w\n%s", err, log.String())
	}
	s, err := trusting(st.Config(), st.TLS.CA, log)
	if err == nil {
		s.Stack = st
		err = s.waitChecked(20 * time.Second)
	}
	if err != nil {
		st.Stop()
		return nil, fmt.Errorf("%w\n%s", err, log.String())
	}
	return s, nil
}

// startEdge runs HAProxy alone, as the stack does (master-worker, in the
// foreground), through the process runner, which stops it by its PID when
// the test ends. Its environment is this process's without any CODENAME_
// setting of the developer's, and its stats must answer.
func startEdge(t testing.TB, sp spec) (*system, error) {
	t.Helper()
	addrs := freeAddrList(t, 3)
	files, err := devtls.Ensure(filepath.Join(sp.stateDir, "tls"))
	if err != nil {
		return nil, err
	}
	hap := startToolProc(t, "haproxy", []string{stack.HAProxyBinary(), "-W", "-db", "-f", sp.haproxyConfig},
		append(append(environWithout("CODENAME_"),
			"CODENAME_HTTPS_ADDR="+addrs[0], "CODENAME_HTTP_ADDR="+addrs[1], "CODENAME_STATS_ADDR="+addrs[2],
			"CODENAME_TLS_CERT="+files.Server, "CODENAME_GRPC_ADDR="+sp.edge[0], "CODENAME_GATEWAY_ADDR="+sp.edge[1]),
			sp.env...))
	s, err := trusting(stack.Config{HTTPSAddr: addrs[0], HTTPAddr: addrs[1], StatsAddr: addrs[2]}, files.CA, hap.out)
	if err != nil {
		return nil, err
	}
	s.edge = hap
	err = poll.Check(10*time.Second, func() error {
		if hap.exited() {
			return fmt.Errorf("HAProxy exited: %w", poll.ErrGiveUp)
		}
		return answers("http://"+addrs[2]+"/metrics", http.StatusOK)
	})
	if err != nil {
		return nil, fmt.Errorf("HAProxy's stats: %w\n%s", err, hap.out.String())
	}
	return s, nil
}

// trusting is the system listening where cfg says, whose output goes to
// log, for the tests' helpers: they trust its development CA (caFile), as
// a user given the CA file would.
func trusting(cfg stack.Config, caFile string, log *syncBuffer) (*system, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return &system{cfg: cfg, log: log, caFile: caFile, roots: roots}, nil
}

var (
	sharedOnce sync.Once
	sharedSys  *system
	sharedErr  error
	sharedDir  string
)

// shared returns the system that tests which only send requests share,
// started as start(t) would, once, and stopped when every test has run.
func shared(t testing.TB) *system {
	t.Helper()
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "codename-e2e-state-")
		if sharedErr == nil {
			sharedSys, sharedErr = launch(specOf([]option{stateDir(sharedDir)}))
		}
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedSys
}

func stopShared() {
	if sharedSys != nil {
		if err := sharedSys.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop shared stack:", err)
		}
	}
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
}
