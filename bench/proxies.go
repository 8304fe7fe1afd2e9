package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/poll"
	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// proxy is a reverse proxy the benchmark starts on its own, in front of a
// running stack's gRPC server: HAProxy with the bare or the project's
// config, nginx or Caddy, or vanguard-go's REST transcoder. It is a child
// of this process, stopped by its PID.
type proxy struct {
	name string
	// addr is its cleartext listener (h2c prior knowledge).
	addr string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *tailBuffer
	// cpu is the processes whose CPU time it costs.
	cpu group
}

// startProxy starts argv with env, then waits, with poll.Until as the
// stack waits, until ready, a call through it, succeeds. cpu says which
// processes to count, given the started one's PID.
func startProxy(ctx context.Context, name, addr string, argv, env []string, cpu func(pid int) group, ready func(context.Context) error) (*proxy, error) {
	p := &proxy{name: name, addr: addr, done: make(chan struct{}), log: &tailBuffer{max: 64 << 10}}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	// As the stack's children: they die with us, and a Ctrl-C in the
	// terminal reaches only us.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	p.cpu = cpu(p.cmd.Process.Pid)
	var last error
	_, ok := poll.Until(15*time.Second, func() bool {
		select {
		case <-p.done:
			last = fmt.Errorf("exited: %v", p.err)
			return true
		default:
		}
		last = ready(ctx)
		return last == nil || ctx.Err() != nil
	})
	if !ok || last != nil {
		stopErr := p.stop()
		return nil, fmt.Errorf("%s (%s) not ready: %v\n%s", name, strings.Join(argv, " "), errors.Join(last, stopErr), p.log.String())
	}
	// Its CPU is read from /proc by PID: the group must find its
	// processes now, whatever the binary calls itself (a worker of
	// bin/haproxy-3.0 is "haproxy-3.0" in /proc/<pid>/comm).
	if _, err := p.cpu.cpu(); err != nil {
		return nil, errors.Join(fmt.Errorf("%s: %w", name, err), p.stop())
	}
	return p, nil
}

// callsThrough is the readiness of a gRPC proxy at addr: a gRPC call
// through it, with the metadata md (such as an API key), reaches the
// server.
func callsThrough(addr string, md ...string) func(context.Context) error {
	return func(ctx context.Context) error { return checkGRPC(ctx, addr, md...) }
}

// stop sends SIGTERM to the proxy's PID, waits for it to exit, and kills it
// (by PID) if it has not after 10 seconds.
func (p *proxy) stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop on SIGTERM and was killed", p.name)
	}
}

// proxyEnv is the environment of a proxy the benchmark starts: this
// process's, without the settings that each configuration gives itself.
func proxyEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CODENAME_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// startHAProxy starts binary in master-worker mode with config, as the
// stack does. Its cost is its workers', found as the master's children.
func startHAProxy(ctx context.Context, name, binary, config, addr string, env []string, md ...string) (*proxy, error) {
	return startProxy(ctx, name, addr, []string{binary, "-W", "-db", "-f", config}, env,
		func(pid int) group { return workersOf(name, pid) }, callsThrough(addr, md...))
}

// bareHAProxyConfig is the least HAProxy needs to carry gRPC: one cleartext
// listener (HTTP/1.1 and h2c), one server reached over HTTP/2, timeouts,
// and nothing else: no log, no rules, no checks, HAProxy's defaults for
// everything else.
const bareHAProxyConfig = `# A bare HAProxy in front of the gRPC server, written by bench/ as a
# yardstick for haproxy/haproxy.cfg.
global
    noreuseport

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend fe_bare
    bind %s
    default_backend be_grpc

backend be_grpc
    server grpc1 %s proto h2
`

// startBareHAProxy writes the bare config into dir and starts binary with
// it in front of grpcAddr.
func startBareHAProxy(ctx context.Context, name, binary, dir, grpcAddr string, md ...string) (*proxy, error) {
	_, addr, cfg, err := proxyFiles(dir, "haproxy-bare", "haproxy.cfg", func(_, addr string) []byte {
		return fmt.Appendf(nil, bareHAProxyConfig, addr, grpcAddr)
	})
	if err != nil {
		return nil, err
	}
	return startHAProxy(ctx, name, binary, cfg, addr, proxyEnv(), md...)
}

// startProjectHAProxy starts binary with config (the repository's
// haproxy.cfg or a variant of it) in front of sys's server and gateway,
// with the environment the stack would give it for the bench (the bench's
// raised per-client limits, cleartext backends) plus env.
func startProjectHAProxy(ctx context.Context, name, binary, config string, sys *system, benchEnv, env []string, md ...string) (*proxy, error) {
	addrs := make([]string, 3)
	for i := range addrs {
		a, err := stack.FreeAddr()
		if err != nil {
			return nil, err
		}
		addrs[i] = a
	}
	all := proxyEnv(slices.Concat(benchEnv, []string{
		"CODENAME_HTTPS_ADDR=" + addrs[0],
		"CODENAME_HTTP_ADDR=" + addrs[1],
		"CODENAME_STATS_ADDR=" + addrs[2],
		"CODENAME_TLS_CERT=" + sys.st.TLS.Server,
		"CODENAME_GRPC_ADDR=" + sys.grpcAddr(),
		"CODENAME_GATEWAY_ADDR=" + sys.cfg.GatewayAddrs[0],
	}, env)...)
	return startHAProxy(ctx, name, binary, config, addrs[1], all, md...)
}

// nginxConfig runs nginx in the foreground as the bench's child, with
// every file it writes in its own folder (so that it never meets a
// system nginx), no access log, and gRPC passed over h2c. nginx sends
// one call per upstream connection; keepalive keeps those connections
// open between calls, as any production gRPC setup of nginx does. By
// default nginx ends a client's connection, and an upstream one, after
// 1000 requests (GOAWAY: the calls in flight on it fail under h2load);
// HAProxy and Caddy set no such limit, so neither does this.
const nginxConfig = `# nginx in front of the gRPC server, written by bench/ as a yardstick.
daemon off;
master_process on;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    upstream grpc_server {
        server %[3]s;
        keepalive 64;
        keepalive_requests 100000000;
    }
    server {
        listen %[2]s http2;
        location / {
            grpc_pass grpc://grpc_server;
        }
    }
}
`

// startNginx starts nginx in front of grpcAddr; its cost is its master's
// and its workers'.
func startNginx(ctx context.Context, dir, grpcAddr string, md ...string) (*proxy, error) {
	prefix, addr, conf, err := proxyFiles(dir, "nginx", "nginx.conf", func(prefix, addr string) []byte {
		return fmt.Appendf(nil, nginxConfig, prefix, addr, grpcAddr)
	})
	if err != nil {
		return nil, err
	}
	// -e: the error log before the config is read, which would otherwise
	// be the system's.
	argv := []string{"nginx", "-p", prefix + "/", "-c", conf, "-e", filepath.Join(prefix, "error.log")}
	return startProxy(ctx, "nginx", addr, argv, proxyEnv(), func(pid int) group {
		return union("nginx", single("nginx master", pid), workersOf("nginx workers", pid))
	}, callsThrough(addr, md...))
}

// caddyConfig: no admin endpoint, no automatic HTTPS, h2c prior knowledge
// on a cleartext listener (Caddy's default protocols have no h2c), on
// loopback only, and no access log (Caddy logs none unless told).
const caddyConfig = `# Caddy in front of the gRPC server, written by bench/ as a yardstick.
{
	admin off
	auto_https off
	servers {
		protocols h1 h2c
	}
}
http://:%s {
	bind %s
	reverse_proxy h2c://%s
}
`

// startCaddy starts Caddy in front of grpcAddr, with its data and config
// folders in dir.
func startCaddy(ctx context.Context, dir, grpcAddr string, md ...string) (*proxy, error) {
	home, addr, conf, err := proxyFiles(dir, "caddy", "Caddyfile", func(_, addr string) []byte {
		host, port, _ := strings.Cut(addr, ":")
		return fmt.Appendf(nil, caddyConfig, port, host, grpcAddr)
	})
	if err != nil {
		return nil, err
	}
	env := proxyEnv("HOME="+home, "XDG_DATA_HOME="+home, "XDG_CONFIG_HOME="+home)
	return startProxy(ctx, "caddy", addr, []string{"caddy", "run", "--config", conf, "--adapter", "caddyfile"}, env,
		func(pid int) group { return single("caddy", pid) }, callsThrough(addr, md...))
}

// proxyFiles makes the folder dir/name for a proxy, picks a free loopback
// address for its listener, and writes there its config file, which
// render makes from the folder and the address.
func proxyFiles(dir, name, file string, render func(folder, addr string) []byte) (folder, addr, conf string, err error) {
	folder = filepath.Join(dir, name)
	if err := os.MkdirAll(folder, 0o755); err != nil {
		return "", "", "", err
	}
	if addr, err = stack.FreeAddr(); err != nil {
		return "", "", "", err
	}
	conf = filepath.Join(folder, file)
	return folder, addr, conf, os.WriteFile(conf, render(folder, addr), 0o644)
}
