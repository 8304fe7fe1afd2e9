// Command codename-stack starts the whole system: the gRPC server, the REST
// gateway and HAProxy in front of them, prints where to reach it, and on
// SIGINT or SIGTERM stops every process it started. It is what the README's
// run command ends in; see scripts/run.sh.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/codename-gateway/codename-gateway/internal/envflag"
	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// about opens the help.
const about = "codename-stack runs the whole system (the gRPC server, the REST gateway, and HAProxy in front of them), prints how to reach it, and stops it on Ctrl-C."

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "codename-stack:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	fs := envflag.New(args[0], getenv, stdout)
	fs.About(about)
	cfg := stack.Config{Output: stdout}
	binDir := fs.String("bin-dir", "CODENAME_BIN_DIR", filepath.Dir(self), "folder holding codename-server and codename-gateway")
	haproxy := fs.String("haproxy", "CODENAME_HAPROXY", "haproxy", "haproxy executable, such as bin/haproxy-3.2 (scripts/setup.sh installs it)")
	haproxyCfg := fs.String("haproxy-config", "CODENAME_HAPROXY_CONFIG", "haproxy/haproxy.cfg", "HAProxy configuration file")
	stateDir := fs.String("state-dir", "CODENAME_STATE_DIR", ".state", "folder for the development CA and certificates")
	httpsAddr := fs.String("https-addr", "CODENAME_HTTPS_ADDR", ":8443", "HAProxy TLS listener (h2 and http/1.1)")
	httpAddr := fs.String("http-addr", "CODENAME_HTTP_ADDR", ":8080", "HAProxy cleartext listener (HTTP/1.1 and h2c)")
	statsAddr := fs.String("stats-addr", "CODENAME_STATS_ADDR", "127.0.0.1:8404", "HAProxy stats page and Prometheus metrics (loopback: for operators only)")
	grpcAddr := fs.String("grpc-addr", "CODENAME_GRPC_ADDR", defaultListeners.grpc, "gRPC server (the first replica)")
	gatewayAddr := fs.String("gateway-addr", "CODENAME_GATEWAY_ADDR", defaultListeners.gateway, "REST gateway (the first replica; co-located, the first server's REST listener)")
	grpcAdminAddr := fs.String("grpc-admin-addr", "CODENAME_GRPC_ADMIN_ADDR", defaultListeners.grpcAdmin, "gRPC server's metrics and health, for operators (the first replica)")
	gatewayAdminAddr := fs.String("gateway-admin-addr", "CODENAME_GATEWAY_ADMIN_ADDR", defaultListeners.gatewayAdmin, "REST gateway's metrics and health, for operators (the first replica; unused co-located, where the server's admin listener serves them)")
	// Co-located by default: on one host, a gateway process beside each
	// server only adds a network hop and a process's CPU to every REST
	// call. Separate is for scaling, restarting or placing the REST side
	// apart from the gRPC side.
	gatewayMode := fs.String("gateway-mode", stack.GatewayModeEnv, stack.Colocated, "where the REST gateway runs: colocated, inside each gRPC server on -gateway-addr (no gateway process, no network hop: cheapest per REST call), or separate, a codename-gateway process per replica (to scale or restart REST apart from gRPC); HAProxy's config is the same for both")
	replicas := fs.Int("replicas", "CODENAME_REPLICAS", 1, fmt.Sprintf("how many gRPC servers and gateways to run (1 to %d); replica i listens on the first one's ports + 10(i-1)", stack.MaxReplicas))
	apiKey := fs.String("api-key", "CODENAME_API_KEY", "", "API key HAProxy requires of every caller (default: none required)")
	apiKeyFile := fs.String("api-key-file", "CODENAME_API_KEY_FILE", "", "file holding the API key, instead of -api-key")
	userDir := fs.String("user-dir", "CODENAME_USER_DIR", "", "folder the commands the banner prints are written for, so that they work pasted there (default: the current folder; scripts/run.sh gives the folder it was started from)")
	for _, v := range passedOn {
		fs.PassesOn(v.env, v.usage)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg.BinDir, cfg.HAProxy, cfg.HAProxyConfig, cfg.StateDir = *binDir, *haproxy, *haproxyCfg, *stateDir
	cfg.Env = append(cfg.Env, stack.GatewayModeEnv+"="+*gatewayMode)
	cfg.HTTPSAddr, cfg.HTTPAddr, cfg.StatsAddr = *httpsAddr, *httpAddr, *statsAddr
	l, err := replicaListeners(firstAddrs{*grpcAddr, *gatewayAddr, *grpcAdminAddr, *gatewayAdminAddr}, *replicas)
	if err != nil {
		return err
	}
	cfg.GRPCAddrs, cfg.GatewayAddrs, cfg.GRPCAdminAddrs, cfg.GatewayAdminAddrs = l.grpc, l.gateway, l.grpcAdmin, l.gatewayAdmin
	cfg.APIKey = *apiKey
	if *apiKeyFile != "" {
		b, err := os.ReadFile(*apiKeyFile)
		if err != nil {
			return fmt.Errorf("API key: %w", err)
		}
		cfg.APIKey = strings.TrimSpace(string(b))
	}

	s, err := stack.Start(ctx, cfg)
	if err != nil {
		return err
	}
	where := *userDir
	if where == "" {
		if where, err = os.Getwd(); err != nil {
			return err
		}
	}
	fmt.Fprint(stdout, banner(bannerConfig{
		userDir: where, binDir: *binDir, ca: s.TLS.CA,
		httpsAddr: *httpsAddr, httpAddr: *httpAddr, statsAddr: *statsAddr,
		apiKey: cfg.APIKey != "", statsPassword: getenv("CODENAME_STATS_PASSWORD") != "",
	}))

	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "stopping")
		return s.Stop()
	case p := <-s.Exited():
		_ = s.Stop()
		return fmt.Errorf("%s exited: %v", p.Name, p.Err())
	}
}

// hostPort replaces the host of a listen address such as ":8443".
func hostPort(host, addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(host, port)
}
