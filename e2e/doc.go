// Package e2e tests the whole system from the outside: the binaries built
// from cmd/, started with HAProxy and haproxy/haproxy.cfg on free loopback
// ports by internal/stack, and driven by real gRPC, HTTP/1.1 and HTTP/2
// clients, curl, grpcurl and the project's own client.
package e2e
