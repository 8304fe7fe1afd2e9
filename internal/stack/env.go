package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/codename-gateway/codename-gateway/internal/devtls"
	"github.com/codename-gateway/codename-gateway/internal/tuning"
)

// child is a process the stack starts, as it starts it.
type child struct {
	name string
	argv []string
	env  []string
}

// ReplicaEnv names the environment variable that gives HAProxy the address
// of replica i (1-based) of a kind, such as CODENAME_GRPC_ADDR for the first
// and CODENAME_GRPC_ADDR_2 for the second.
func ReplicaEnv(base string, i int) string {
	if i == 1 {
		return base
	}
	return fmt.Sprintf("%s_%d", base, i)
}

// plan lists the children of a stack of cfg, servers first and HAProxy
// last, each with its environment: this process's and cfg.Env, then what
// that kind of child is told (its addresses, its certificates, HAProxy the
// replicas' addresses and the API key).
func plan(cfg Config, files devtls.Files) ([]child, error) {
	n := len(cfg.GRPCAddrs)
	var common []string
	for _, kv := range append(os.Environ(), cfg.Env...) {
		// The key is HAProxy's alone, and the replica addresses are set
		// below for exactly the replicas started.
		if !strings.HasPrefix(kv, "CODENAME_API_KEY=") && !strings.HasPrefix(kv, "CODENAME_GRPC_ADDR_") && !strings.HasPrefix(kv, "CODENAME_GATEWAY_ADDR_") {
			common = append(common, kv)
		}
	}
	mode, err := gatewayMode(lastValue(common, GatewayModeEnv))
	if err != nil {
		return nil, err
	}
	// The binaries take their share of the cores themselves
	// (internal/tuning); the stack tells them how many processes share.
	if !isSet(common, tuning.ShareEnv) {
		common = append(common, fmt.Sprintf("%s=%d", tuning.ShareEnv, cpuShare(mode, n)))
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
	if n, ok := publicMaxConn(); ok && !isSet(common, "CODENAME_MAXCONN") {
		hapEnv = append(hapEnv, fmt.Sprintf("CODENAME_MAXCONN=%d", n))
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
	return children, nil
}

// isSet reports whether env has an entry for key.
func isSet(env []string, key string) bool {
	return slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, key+"=") })
}

// lastValue is the value of the last key=value entry for key in env, as
// exec gives a repeated variable its last value.
func lastValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}
