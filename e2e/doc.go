// Package e2e tests the whole system from the outside: the binaries built
// from cmd/, started with HAProxy and haproxy/haproxy.cfg on free loopback
// ports by internal/stack, and driven by real gRPC, HTTP/1.1 and HTTP/2
// clients, curl, grpcurl and the project's own client.
//
// A test starts its system one way, start(t, options...) in start_test.go
// (or shares one, shared(t)); it waits one way, internal/poll; it reads a
// metric one way, promtest.Sum (metrics_test.go), and HAProxy's view of its
// servers one way, the stats CSV (stats_test.go).
package e2e
