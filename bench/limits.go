package main

import (
	"fmt"
	"strings"

	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// Issue 15 point 5 asks that a missed target come with what limits it.
// These lines say it, each from a profile in profiles.md (the section
// named); results.md prints a figure's line only when the figure misses.
var limits = map[string]string{
	figRESTCPU:       "two Go processes per call: the gateway's HTTP/2 server, grpc-gateway's mux and JSON, and a gRPC client call over loopback, then the server's own HTTP/2 and interceptors, each side with its system calls and wake-ups (profiles.md, \"REST: Go CPU per call, both gateway modes\")",
	figCoRESTCPU:     "with the hop gone, the work of the call itself: in process, with no socket (server BenchmarkRESTUnary), a co-located REST call costs about 40 µs of CPU on this loaded machine, a third of it allocation and garbage collection (137 allocations, 12.7 KB a call), the log lines 10 %, the metrics interceptor 9 %, grpc-gateway's AnnotateContext 8 %; Go's HTTP/2 server and its system calls come on top (profiles.md, \"REST: Go CPU per call, both gateway modes\")",
	figCoRESTRatio:   "HAProxy's own CPU per REST call and the 2 cores that HAProxy, the server and h2load share: the edge alone bounds gRPC through HAProxy well under direct (profiles.md, \"HAProxy\" and \"REST: Go CPU per call, both gateway modes\")",
	figLatencyP99Add: "queueing: with 50 calls in flight on 2 shared cores the calls wait for CPU, and through HAProxy each call needs its CPU too (profiles.md, \"Latency HAProxy adds\")",
}

// heldLimit is the line for the memory a held stream of transport costs
// process (gateway or server) in mode, when it misses. The figures in it
// are server BenchmarkHeldStream's, with its heap and goroutine profiles
// (200 streams, collected first).
func heldLimit(mode, process, transport string) string {
	const where = " (profiles.md, \"Memory per held stream, per transport and process\")"
	server := "goroutine stacks, about 11.8 KB of the server's 16.8 KB a stream: grpc-go's handler parked under the interceptors and the goroutine blocked in Recv, each keeping about 7 KB of stack since more than a quarter of it is in use; the heap's largest part is grpc-go's stream and its metadata (operateHeaders, 2.3 KB)"
	gateway := map[string]string{
		"NDJSON":    "3 goroutines a stream in the gateway (the HTTP/2 handler waiting in the gRPC client's Recv, the reader forwarding the request body, parked in encoding/json with its 2 KB buffer, and grpc-go's watcher of the client stream's context), 17 KB of stacks of 33.5 KB, and Go's HTTP/2 response writer's 4 KB buffer",
		"SSE":       "2 goroutines a stream in the gateway (the HTTP/2 handler waiting in the gRPC client's Recv, and grpc-go's watcher of the client stream's context), 13.4 KB of stacks of 25.4 KB, and Go's HTTP/2 response writer's 4 KB buffer",
		"WebSocket": "3 goroutines a stream in the gateway (the connection's own, reading frames; the reader of the gRPC stream; grpc-go's watcher of the client stream's context), 10.2 KB of stacks of 29.7 KB, and net/http's 4 KB read and 4 KB write buffers of the HTTP/1.1 connection, which the WebSocket keeps after the upgrade",
	}
	if transport == "SSE" {
		// A browser's SSE stream half-closes its gRPC side at once, so
		// the server has no goroutine blocked in Recv for it.
		server = "goroutine stacks, about 7.7 KB of the server's 11.7 KB a stream: grpc-go's handler parked under the interceptors keeps about 7 KB of stack since more than a quarter of it is in use; the heap's largest part is grpc-go's stream and its metadata (operateHeaders, 1.9 KB)"
	}
	switch {
	case transport == heldTransports[0]:
		// gRPC never touches the gateway, whatever the mode.
		return server + where
	case mode == stack.Colocated:
		return "both halves in one process: " + gateway[transport] + ", then " + server + "; bufconn's pipe adds about 1 KB" + where
	case process == procGateway:
		return gateway[transport] + where
	default:
		return server + where
	}
}

// limitOf returns what limits figure name, if this file knows.
func limitOf(name string) (string, bool) {
	if l, ok := limits[name]; ok {
		return l, true
	}
	for _, mode := range gatewayModes {
		for _, p := range []string{procGateway, procServer} {
			for _, t := range heldTransports {
				if figHeldIn(mode, p, t) == name {
					return heldLimit(mode, p, t), true
				}
			}
		}
	}
	return "", false
}

// missedLimits lists, for each measured figure that misses its target and
// whose limit is known, a line saying what limits it.
func missedLimits(figs []figure) []string {
	var lines []string
	for _, f := range figs {
		if !f.measured || f.target.none || f.met() {
			continue
		}
		if l, ok := limitOf(f.name); ok {
			lines = append(lines, fmt.Sprintf("%s: %s against %s; %s.", f.name, f.formatValue(f.value), f.formatTarget(), strings.TrimSuffix(l, ".")))
		}
	}
	return lines
}
