package stack

import (
	"fmt"
	"net"
	"strings"

	"github.com/codename-gateway/codename-gateway/internal/devtls"
)

// Names the backends' certificates carry and HAProxy and the gateways
// verify: the backends are reached by addresses that differ per
// deployment, so the name to check is fixed instead.
const (
	serverTLSName  = "codename-server"
	gatewayTLSName = "codename-gateway"
)

// tlsEnv is what each kind of child needs in its environment to speak
// TLS on the hops behind HAProxy.
type tlsEnv struct{ server, gateway, haproxy []string }

// backendTLS reads CODENAME_BACKEND_TLS ("mutual", the default: TLS on
// every hop, each certificate verified, and client certificates, so that
// the backends accept calls only from the edge and the gateways; "on":
// TLS without client certificates; "off": cleartext, for a setup on
// loopback only) and issues, from the development CA in tlsDir, the
// certificates that mode needs.
func backendTLS(mode, tlsDir string, ca string, grpcAddrs, gatewayAddrs []string) (tlsEnv, error) {
	var env tlsEnv
	switch mode {
	case "off":
		return env, nil
	case "":
		mode = "mutual"
	case "on", "mutual":
	default:
		return env, fmt.Errorf("CODENAME_BACKEND_TLS=%q: want off, on or mutual", mode)
	}
	server, err := devtls.IssueServer(tlsDir, serverTLSName, hostsOf(grpcAddrs))
	if err != nil {
		return env, err
	}
	gateway, err := devtls.IssueServer(tlsDir, gatewayTLSName, hostsOf(gatewayAddrs))
	if err != nil {
		return env, err
	}
	env.server = []string{"CODENAME_GRPC_TLS_CERT=" + server.Cert, "CODENAME_GRPC_TLS_KEY=" + server.Key}
	env.gateway = []string{"CODENAME_GATEWAY_TLS_CERT=" + gateway.Cert, "CODENAME_GATEWAY_TLS_KEY=" + gateway.Key,
		"CODENAME_GRPC_TLS_CA=" + ca, "CODENAME_GRPC_TLS_SERVER_NAME=" + serverTLSName}
	env.haproxy = []string{"CODENAME_BACKEND_TLS_CA=" + ca}
	if mode == "mutual" {
		edge, err := devtls.IssueClient(tlsDir, "haproxy-client")
		if err != nil {
			return env, err
		}
		gwClient, err := devtls.IssueClient(tlsDir, "gateway-client")
		if err != nil {
			return env, err
		}
		env.server = append(env.server, "CODENAME_GRPC_TLS_CLIENT_CA="+ca)
		env.gateway = append(env.gateway, "CODENAME_GATEWAY_TLS_CLIENT_CA="+ca,
			"CODENAME_GATEWAY_CLIENT_CERT="+gwClient.Cert, "CODENAME_GATEWAY_CLIENT_KEY="+gwClient.Key)
		env.haproxy = append(env.haproxy, "CODENAME_BACKEND_CLIENT_CERT="+edge.Bundle)
	}
	return env, nil
}

// hostsOf lists the names and addresses a backend is reached by: its
// listen addresses' hosts, and this machine's loopback names.
func hostsOf(addrs []string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(strings.TrimSpace(a))
		if err == nil && host != "" && host != "0.0.0.0" && host != "::" {
			hosts = append(hosts, host)
		}
	}
	return hosts
}
