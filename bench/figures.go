package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
)

// The figures the issue asks for, in the order of the results table. The
// smoke test checks that the table has every one.
const (
	figGRPCRatio     = "gRPC unary throughput, through HAProxy / direct"
	figHAProxyCPU    = "HAProxy CPU per gRPC request"
	figRESTRatio     = "REST unary throughput, through HAProxy and gateway / gRPC direct"
	figRESTCPU       = "CPU of the Go processes (gateway + server, separate) per REST request"
	figVanguard      = "REST unary throughput / the same service transcoded by vanguard-go"
	figStreamRate    = "KeepGettingCodenames messages/s through HAProxy (interval 0)"
	figStreamRatio   = "KeepGettingCodenames messages/s, through HAProxy / direct"
	figHeldStreams   = "concurrent bidi streams held through HAProxy"
	figHeldOpenTime  = "time to open all held streams"
	figHeldErrors    = "errors while opening and holding the streams"
	figHeldGoMem     = "Go server memory per held stream (RSS)"
	figHeldHAProxy   = "HAProxy memory per held stream (workers' RSS)"
	figLatencyP50Add = "p50 latency HAProxy adds, 1 call in flight"
	figLatencyP99Add = "p99 latency HAProxy adds, 50 calls in flight"
)

// Issue 15 point 5: REST unary through HAProxy with the gateway inside the
// server (co-located), in the same rounds as the separate gateway and
// against the same direct gRPC calls; the table lists them after
// figRESTCPU. Co-located, the server is the only Go process.
const (
	figCoRESTRatio = "REST unary throughput, through HAProxy and co-located gateway / gRPC direct"
	figCoRESTCPU   = "CPU of the Go process (server with the gateway inside, co-located) per REST request"
)

// Issue 11 point 7: the same unary calls through a second stack whose hops
// behind HAProxy are mutual TLS, in the same rounds as the cleartext one
// (the reference of every other figure); the table lists them after
// figRESTCPU.
const (
	figTLSGRPCRatio   = "gRPC unary throughput through HAProxy, TLS backends / cleartext backends"
	figTLSRESTRatio   = "REST unary throughput through HAProxy and gateway, TLS backends / cleartext backends"
	figTLSHAProxyCPU  = "HAProxy CPU per gRPC request, TLS backends"
	figTLSHAProxyCost = "HAProxy CPU per gRPC request, TLS backends − cleartext backends"
	figTLSRESTCPU     = "CPU of the Go processes per REST request, TLS backends"
	figTLSRESTCost    = "CPU of the Go processes per REST request, TLS backends − cleartext backends"
)

// Issue 14 point 4: the unary calls of a browser's typed client, gRPC-Web
// and Connect with a JSON body, through HAProxy and the gateway (which
// answers them with connect-go), measured as the REST row is and in the
// same rounds; the table lists them after figRESTCPU.
const (
	figGRPCWebRatio = "gRPC-Web unary throughput, through HAProxy and gateway / gRPC direct"
	figGRPCWebCPU   = "CPU of the Go processes (gateway + server) per gRPC-Web request"
	figConnectRatio = "Connect unary (JSON) throughput, through HAProxy and gateway / gRPC direct"
	figConnectCPU   = "CPU of the Go processes (gateway + server) per Connect JSON request"
)

// specs gives each figure of the table, in order, its target (the issue's)
// and how it is printed.
var specs = slices.Concat([]figure{
	{name: figGRPCRatio, digits: 2, target: atLeast(0.75)},
	{name: figHAProxyCPU, unit: " µs", digits: 1, target: atMost(5)},
	{name: figRESTRatio, digits: 2, target: atLeast(0.40)},
	// Issue 6 asked 35 µs of the separate pair; issue 15 point 5 moved
	// that target to the co-located process and allows the separate
	// gateway, which pays for a network hop, 50.
	{name: figRESTCPU, unit: " µs", digits: 1, target: atMost(50)},
	{name: figCoRESTRatio, digits: 2, target: atLeast(0.25)},
	{name: figCoRESTCPU, unit: " µs", digits: 1, target: atMost(35)},
	// The issue asks for these to be measured beside REST and gRPC, with
	// no number to meet.
	{name: figGRPCWebRatio, digits: 2, target: noTarget()},
	{name: figGRPCWebCPU, unit: " µs", digits: 1, target: noTarget()},
	{name: figConnectRatio, digits: 2, target: noTarget()},
	{name: figConnectCPU, unit: " µs", digits: 1, target: noTarget()},
	// The issue asks only that TLS behind the edge stay cheap and that the
	// figures be stated, with no number to meet: these rows report, they
	// do not judge (a target made up here would be a claim the issue does
	// not make).
	{name: figTLSGRPCRatio, digits: 2, target: noTarget()},
	{name: figTLSRESTRatio, digits: 2, target: noTarget()},
	{name: figTLSHAProxyCPU, unit: " µs", digits: 1, target: noTarget()},
	{name: figTLSHAProxyCost, unit: " µs", digits: 1, target: noTarget()},
	{name: figTLSRESTCPU, unit: " µs", digits: 1, target: noTarget()},
	{name: figTLSRESTCost, unit: " µs", digits: 1, target: noTarget()},
}, yardstickSpecs(), []figure{
	{name: figVanguard, digits: 2, target: atLeast(1)},
	{name: figStreamRate, unit: " msg/s", target: atLeast(200000)},
	{name: figStreamRatio, digits: 2, target: atLeast(0.8)},
	{name: figHeldStreams, target: atLeast(50000)},
	{name: figHeldOpenTime, unit: " s", digits: 2, target: atMost(5)},
	{name: figHeldErrors, target: atMost(0)},
	{name: figHeldGoMem, unit: " KB", digits: 1, target: atMost(8)},
	{name: figHeldHAProxy, unit: " KB", digits: 1, target: atMost(2)},
	{name: figLatencyP50Add, unit: " ms", digits: 3, target: atMost(0.1)},
	{name: figLatencyP99Add, unit: " ms", digits: 3, target: atMost(0.5)},
}, heldTransportSpecs())

// allFigures lists the name of every figure of the table, in order.
var allFigures = names(specs)

// names lists the names of figs, in order.
func names(figs []figure) []string {
	names := make([]string, len(figs))
	for i, f := range figs {
		names[i] = f.name
	}
	return names
}

// spec returns the figure called name, not yet measured.
func spec(name string) figure {
	for _, f := range specs {
		if f.name == name {
			return f
		}
	}
	panic("no figure called " + name)
}

// measured returns figure name with the values measured in each round; its
// value is their median.
func measured(name string, rounds []float64, note string) figure {
	f := spec(name)
	f.rounds, f.value, f.measured, f.note = rounds, median(rounds), true, note
	return f
}

// notMeasured is the row of a figure this run left out, and why.
func notMeasured(name, why string) figure {
	f := spec(name)
	f.note = why
	return f
}

// target is the value a figure must reach: at least limit, or at most; or
// none, for a figure that is only reported.
type target struct {
	atLeast bool
	limit   float64
	none    bool
}

func atLeast(v float64) target { return target{atLeast: true, limit: v} }
func atMost(v float64) target  { return target{limit: v} }
func noTarget() target         { return target{none: true} }

// figure is one row of the results table.
type figure struct {
	name string
	// value is the median over the rounds (or the one value measured).
	value float64
	// rounds are the values behind the median, one per round.
	rounds []float64
	unit   string
	// digits after the decimal point when printing.
	digits int
	target target
	// measured is false for a figure this run did not measure; note says why.
	measured bool
	note     string
}

// met reports whether a measured figure reaches its target.
func (f figure) met() bool {
	if !f.measured || f.target.none || math.IsNaN(f.value) {
		return false
	}
	if f.target.atLeast {
		return f.value >= f.target.limit
	}
	return f.value <= f.target.limit
}

// score is how far the figure is toward its target, 1 being exactly on it
// and more being better, for the chart. Figures with no target, or whose
// target is zero (no errors), have no meaningful score and return NaN.
func (f figure) score() float64 {
	switch {
	case !f.measured || f.target.none || f.target.limit == 0:
		return math.NaN()
	case f.target.atLeast:
		return f.value / f.target.limit
	case f.value <= 0:
		return math.Inf(1) // at most a positive limit, and nothing at all measured
	default:
		return f.target.limit / f.value
	}
}

func (f figure) formatValue(v float64) string {
	return strconv.FormatFloat(v, 'f', f.digits, 64) + f.unit
}

func (f figure) formatTarget() string {
	if f.target.none {
		return "none"
	}
	op := "≤"
	if f.target.atLeast {
		op = "≥"
	}
	return fmt.Sprintf("%s %s", op, strconv.FormatFloat(f.target.limit, 'f', -1, 64)+f.unit)
}
