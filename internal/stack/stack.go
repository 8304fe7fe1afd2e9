// Package stack runs the whole system as child processes: the gRPC server,
// the REST gateway, and HAProxy with haproxy/haproxy.cfg in master-worker
// mode. The run command and the end-to-end tests both start it, so the
// tests exercise exactly what a developer runs.
package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/devtls"
	"github.com/codename-gateway/codename-gateway/internal/poll"
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

// ReplicaEnv names the environment variable that gives HAProxy the address
// of replica i (1-based) of a kind, such as CODENAME_GRPC_ADDR for the first
// and CODENAME_GRPC_ADDR_2 for the second.
func ReplicaEnv(base string, i int) string {
	if i == 1 {
		return base
	}
	return fmt.Sprintf("%s_%d", base, i)
}

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

// Process is one child of the stack.
type Process struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	argv []string
	env  []string
	// stopping is set when we stop the child, so that its exit is not
	// reported as a failure.
	stopping atomic.Bool
}

// PID returns the child's process ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the child has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns how the child exited, once Done is closed.
func (p *Process) Err() error { return p.err }

// Signal sends sig to the child.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Start creates the TLS files if needed, starts the servers, the gateways
// (unless $CODENAME_GATEWAY_MODE in cfg.Env or the environment is
// colocated, when the servers serve REST themselves) and HAProxy, and returns once a request through HAProxy reaches the gRPC
// server's health check. On error, whatever was started is stopped again.
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
	s := &Stack{cfg: cfg, TLS: files, exited: make(chan *Process, 2*n+1)}
	s.reloads = &noticeWriter{w: cfg.Output, needle: []byte("Reloading HAProxy")}
	s.loaded = &noticeWriter{w: s.reloads, needle: []byte("Loading success.")}
	var common []string
	for _, kv := range append(os.Environ(), cfg.Env...) {
		// The key is HAProxy's alone, and the replica addresses are set
		// below for exactly the replicas started.
		if !strings.HasPrefix(kv, "CODENAME_API_KEY=") && !strings.HasPrefix(kv, "CODENAME_GRPC_ADDR_") && !strings.HasPrefix(kv, "CODENAME_GATEWAY_ADDR_") {
			common = append(common, kv)
		}
	}
	// The processes share this machine's cores. Go gives each process as
	// many schedulers (Ps) as there are cores, so that the server, the
	// gateway and HAProxy's threads would all contend for all of them,
	// and the Go runtimes spend their time parking and waking threads.
	// Each Go process gets its share of the cores instead, as a container
	// CPU limit would give it (bench/: 25-30 % less CPU per call in the
	// server and the gateway on 2 cores). A GOMAXPROCS in the environment
	// still wins.
	mode, err := gatewayMode(lastValue(common, GatewayModeEnv))
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(common, func(kv string) bool { return strings.HasPrefix(kv, "GOMAXPROCS=") }) {
		common = append(common, fmt.Sprintf("GOMAXPROCS=%d", goMaxProcsFor(mode, n)))
	}
	secure, err := backendTLS(lastValue(common, "CODENAME_BACKEND_TLS"), filepath.Join(cfg.StateDir, "tls"), files.CA, cfg.GRPCAddrs, cfg.GatewayAddrs)
	if err != nil {
		return nil, err
	}
	hapEnv := append(slices.Clone(common),
		"CODENAME_HTTPS_ADDR="+cfg.HTTPSAddr,
		"CODENAME_HTTP_ADDR="+cfg.HTTPAddr,
		"CODENAME_STATS_ADDR="+cfg.StatsAddr,
		"CODENAME_TLS_CERT="+files.Server,
	)
	hapEnv = append(hapEnv, secure.haproxy...)
	if cfg.APIKey != "" {
		hapEnv = append(hapEnv, "CODENAME_API_KEY="+cfg.APIKey)
	}
	if n, ok := publicMaxConn(); ok && !slices.ContainsFunc(common, func(kv string) bool { return strings.HasPrefix(kv, "CODENAME_MAXCONN=") }) {
		hapEnv = append(hapEnv, fmt.Sprintf("CODENAME_MAXCONN=%d", n))
	}
	type child struct {
		name string
		argv []string
		env  []string
	}
	var children []child
	for i, addr := range cfg.GRPCAddrs {
		hapEnv = append(hapEnv, ReplicaEnv("CODENAME_GRPC_ADDR", i+1)+"="+addr)
		env := append(slices.Clone(common), "CODENAME_GRPC_ADDR="+addr)
		env = append(env, secure.server...)
		if i < len(cfg.GRPCAdminAddrs) {
			env = append(env, "CODENAME_GRPC_ADMIN_ADDR="+cfg.GRPCAdminAddrs[i])
		}
		if mode == Colocated {
			// The server serves REST where the gateway would, with the
			// gateway's certificate, which HAProxy checks by its name.
			env = append(env, "CODENAME_REST_ADDR="+cfg.GatewayAddrs[i])
			env = append(env, secure.gateway...)
		}
		children = append(children, child{fmt.Sprintf("server-%d", i+1), []string{filepath.Join(cfg.BinDir, "codename-server")}, env})
	}
	for i, addr := range cfg.GatewayAddrs {
		hapEnv = append(hapEnv, ReplicaEnv("CODENAME_GATEWAY_ADDR", i+1)+"="+addr)
		if mode == Colocated {
			continue
		}
		target := cfg.GatewayTarget
		if target == "" {
			target = strings.Join(cfg.GRPCAddrs, ",")
		}
		env := append(slices.Clone(common), "CODENAME_GATEWAY_ADDR="+addr, "CODENAME_GRPC_ADDRS="+target)
		env = append(env, secure.gateway...)
		if i < len(cfg.GatewayAdminAddrs) {
			env = append(env, "CODENAME_GATEWAY_ADMIN_ADDR="+cfg.GatewayAdminAddrs[i])
		}
		children = append(children, child{fmt.Sprintf("gateway-%d", i+1), []string{filepath.Join(cfg.BinDir, "codename-gateway")}, env})
	}
	// -W: master-worker, so that a reload (SIGUSR2) keeps connections;
	// -db: stay in the foreground, logging to our output.
	children = append(children, child{"haproxy", []string{cfg.HAProxy, "-W", "-db", "-f", cfg.HAProxyConfig}, hapEnv})
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

func (s *Stack) start(name string, argv, env []string) (*Process, error) {
	run := argv
	if s.cfg.Netns != nil {
		if ns := s.cfg.Netns(name); ns != "" {
			run = append([]string{"ip", "netns", "exec", ns}, argv...)
		}
	}
	cmd := exec.Command(run[0], run[1:]...)
	cmd.Env = env
	dst := s.cfg.Output
	if name == "haproxy" {
		dst = s.loaded
	}
	out := newPrefixWriter(dst, name)
	cmd.Stdout, cmd.Stderr = out, out
	p := &Process{Name: name, cmd: cmd, done: make(chan struct{}), argv: argv, env: env}
	if name == "haproxy" {
		out.drop = func(line []byte) bool { return p.stopping.Load() && haproxyStopLine.Match(line) }
	}
	// Pdeathsig: the children die with us even if we are killed without a
	// chance to stop them. Setpgid: a Ctrl-C in the terminal reaches only
	// us, so that Stop can stop the children in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		out.Flush()
		close(p.done)
		if !p.stopping.Load() {
			select {
			case s.exited <- p:
			default:
			}
		}
	}()
	return p, nil
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

// Reload makes HAProxy reload its configuration and certificates: the
// master starts new workers, and the old ones finish what they hold. It
// returns once the master has acknowledged the signal ("Reloading
// HAProxy"); it does not wait for the new workers. HAProxy 2.6's master
// now and then drops a SIGUSR2 that arrives soon after a reload on a busy
// machine (seen in TestHitlessReloads with the cores saturated), so an
// unacknowledged signal is sent again, as an operator would.
func (s *Stack) Reload() error {
	want := s.reloads.seen.Load() + 1
	for range 3 {
		if err := s.Process("haproxy").Signal(syscall.SIGUSR2); err != nil {
			return err
		}
		if _, ok := poll.Until(2*time.Second, func() bool { return s.reloads.seen.Load() >= want }); ok {
			return nil
		}
	}
	return errors.New("HAProxy did not acknowledge three SIGUSR2 in 6 s")
}

// Process returns the child called name ("server-1", "gateway-1", ...,
// "haproxy").
func (s *Stack) Process(name string) *Process {
	for _, p := range s.procs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Restart stops the child called name with SIGTERM (killing it after 15
// seconds) and starts it again with the same arguments and environment, as
// a deployment would replace a process. It does not wait for readiness.
func (s *Stack) Restart(name string) (*Process, error) {
	for i, p := range s.procs {
		if p.Name != name {
			continue
		}
		if err := stop(p); err != nil {
			return nil, err
		}
		np, err := s.start(p.Name, p.argv, p.env)
		if err != nil {
			return nil, err
		}
		s.procs[i] = np
		return np, nil
	}
	return nil, fmt.Errorf("no process called %s", name)
}

// Exited receives the first child that exits before Stop is called.
func (s *Stack) Exited() <-chan *Process { return s.exited }

// Stop sends SIGTERM to every child, HAProxy first so that no new request
// arrives while the others drain, waits for them, and kills any that has
// not exited after 15 seconds. It is safe to call more than once.
func (s *Stack) Stop() error {
	var errs []error
	for i := len(s.procs) - 1; i >= 0; i-- {
		if err := stop(s.procs[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stop sends p SIGTERM and waits for it to exit, killing it after 15 s.
func stop(p *Process) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	p.stopping.Store(true)
	_ = p.Signal(syscall.SIGTERM)
	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop on SIGTERM and was killed", p.Name)
	}
}

// StartOnFreePorts is Start with every address in cfg set to a free
// loopback port, for tests and benchmarks; Config tells which ports they
// are. A port found free can be taken by another program's connection
// before the stack binds it, so a start that fails on a taken port is tried
// again on new ports, up to three times.
func StartOnFreePorts(ctx context.Context, cfg Config, replicas int) (*Stack, error) {
	for attempt := 1; ; attempt++ {
		addrs := make([]string, 3+4*replicas)
		for i := range addrs {
			a, err := FreeAddr()
			if err != nil {
				return nil, err
			}
			addrs[i] = a
		}
		cfg.HTTPSAddr, cfg.HTTPAddr, cfg.StatsAddr = addrs[0], addrs[1], addrs[2]
		rest := addrs[3:]
		cfg.GRPCAddrs, cfg.GatewayAddrs = rest[:replicas], rest[replicas:2*replicas]
		cfg.GRPCAdminAddrs, cfg.GatewayAdminAddrs = rest[2*replicas:3*replicas], rest[3*replicas:]
		out := cfg.Output
		if out == nil {
			out = io.Discard
		}
		w := &noticeWriter{w: out, needle: portTaken}
		try := cfg
		try.Output = w
		s, err := Start(ctx, try)
		if err == nil || attempt == 3 || w.seen.Load() == 0 {
			return s, err
		}
	}
}

// Config returns the configuration the stack runs with.
func (s *Stack) Config() Config { return s.cfg }

// portTaken is in what a child says when its port is taken: HAProxy
// says "Address", Go "address".
var portTaken = []byte("ddress already in use")

// noticeWriter passes output on and counts the writes that held needle.
type noticeWriter struct {
	w      io.Writer
	needle []byte
	seen   atomic.Int64
}

func (n *noticeWriter) Write(b []byte) (int, error) {
	if bytes.Contains(b, n.needle) {
		n.seen.Add(1)
	}
	return n.w.Write(b)
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago, for children that must be told their address before they start.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// dialable turns a listen address such as ":8080" into one a client can
// dial on this machine.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || host == "0.0.0.0" || host == "::" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// GoMaxProcs is the GOMAXPROCS each Go process of a stack with replicas
// servers and as many gateways gets: an equal share of the cores with
// HAProxy, at least one.
func GoMaxProcs(replicas int) int { return coreShare(runtime.NumCPU(), replicas) }

func coreShare(cores, replicas int) int { return max(1, cores/(2*replicas+1)) }

// publicMaxConn lowers haproxy.cfg's default for its public frontend's
// connections (4000) when this process's file descriptor limit is too low
// for it: HAProxy sizes its global maxconn from that limit (two
// descriptors per proxied connection), and the public frontend must stay
// below it so that the stats listener always has room.
func publicMaxConn() (int, bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, false
	}
	n := int(lim.Cur/2) - 200
	if n >= 4000 {
		return 0, false
	}
	return max(n, 100), true
}
