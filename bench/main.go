// Command bench measures codename-gateway against the performance targets
// of issue 6 and writes the results table (results.md) and a chart
// (results.svg) into the folder given by -out. It is a module of its own;
// from the repository root:
//
//	go -C bench run . -out results
//
// It builds the binaries, starts the system (gRPC server, REST gateway,
// HAProxy) as child processes on free loopback ports with internal/stack,
// and drives it with h2load for unary gRPC, REST, gRPC-Web and Connect, and with a small Go
// harness for what h2load cannot do: bidi streams, latency percentiles
// from a gRPC client, and many held streams. The REST gateway is also
// compared with connectrpc's vanguard-go over the same server
// (bench/vanguard). Every figure compares configurations measured in
// alternating rounds on the same machine at the same time, and reports the
// median: the machine is shared, so absolute numbers drift but ratios hold.
//
// -smoke makes a tiny run that only proves all of this works (TestSmoke
// runs it); -only runs some steps; -haproxy-config and -env run the same
// benchmark with a change to try, leaving the repository as it is.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // -h: the usage is printed
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	out      string
	duration time.Duration
	rounds   int
	streams  int
	// transportStreams is how many streams of each transport the
	// held-transports step holds.
	transportStreams int
	smoke            bool
	conns, inFlight  int
	firehose         int
	// haproxyConfig and env let a run try a change (an HAProxy setting,
	// GOGC ...) without editing the repository: the table then says what
	// the change would give.
	haproxyConfig string
	env           listFlag
	// only lists the steps to run (unary, yardsticks, vanguard, streams,
	// latency, held, transports); empty means all.
	only []string
}

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.out, "out", "results", "folder to write results.md and results.svg into (relative to bench/, where the command runs)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of one measured run of one configuration")
	fs.IntVar(&o.rounds, "rounds", 5, "rounds of alternating runs per figure; the median is reported")
	fs.IntVar(&o.streams, "streams", 50000, "bidi streams to hold through HAProxy for the held-streams figures")
	fs.IntVar(&o.transportStreams, "transport-streams", 1000, "streams of each transport (gRPC bidi, NDJSON, SSE, WebSocket) to hold for the memory per stream of each process, in each gateway mode")
	fs.BoolVar(&o.smoke, "smoke", false, "a tiny run that only proves the benchmark works: short runs, 1 round, 100 held streams")
	fs.IntVar(&o.conns, "conns", 2, "h2load connections for unary calls")
	fs.IntVar(&o.inFlight, "inflight", 32, "h2load requests in flight per connection for unary calls")
	fs.IntVar(&o.firehose, "firehose-streams", 4, "KeepGettingCodenames streams (on one connection) for the messages/s figures")
	fs.StringVar(&o.haproxyConfig, "haproxy-config", "", "HAProxy configuration to run instead of the repository's haproxy/haproxy.cfg, to try a change")
	fs.Var(&o.env, "env", "KEY=VALUE added to the environment of the server, gateway and HAProxy (repeatable), to try a setting such as GOGC=200")
	only := fs.String("only", "", "comma-separated steps to run, of unary, yardsticks, vanguard, streams, latency, held, transports (default: all)")
	if err := fs.Parse(args[1:]); err != nil {
		return o, err
	}
	if *only != "" {
		o.only = strings.Split(*only, ",")
		for _, k := range o.only {
			if !slices.Contains([]string{"unary", "yardsticks", "vanguard", "streams", "latency", "held", "transports"}, k) {
				return o, fmt.Errorf("-only: unknown step %q", k)
			}
		}
	}
	if o.smoke {
		o.duration, o.rounds, o.streams, o.transportStreams = 300*time.Millisecond, 1, 100, 20
	}
	if o.rounds < 1 || o.streams < 1 || o.transportStreams < 1 || o.duration <= 0 || o.conns < 1 || o.inFlight < 1 || o.firehose < 1 {
		return o, fmt.Errorf("-rounds, -streams, -transport-streams, -duration, -conns, -inflight and -firehose-streams must be positive")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	started := time.Now()
	load0 := loadAverage()

	root, err := repoRoot(ctx)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "codename-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	binDir, stateDir := filepath.Join(work, "bin"), filepath.Join(work, "state")
	fmt.Fprintln(stdout, "building ./cmd/...")
	if err := build(ctx, root, binDir); err != nil {
		return err
	}
	// The vanguard-go yardstick is optional: without it one figure is
	// left out, not the run.
	vanguardBin, vanguardErr := buildVanguard(ctx, root, binDir)
	haproxyConfig := o.haproxyConfig
	if haproxyConfig == "" {
		haproxyConfig = filepath.Join(root, "haproxy", "haproxy.cfg")
	}
	start := func(ctx context.Context, env ...string) (*system, error) {
		return startSystem(ctx, binDir, stateDir, haproxyConfig, append(slices.Clone(o.env), env...)...)
	}

	p := plan{rounds: o.rounds, duration: o.duration, warmUp: min(o.duration, time.Second)}
	var res results
	step := func(name string, f func() ([]figure, []string, error)) error {
		fmt.Fprintf(stdout, "measuring %s\n", name)
		figs, details, err := f()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		res.figures = append(res.figures, figs...)
		res.details = append(res.details, details...)
		for _, f := range figs {
			value := "not measured: " + f.note
			if f.measured {
				value = f.formatValue(f.value)
			}
			fmt.Fprintf(stdout, "  %s: %s (target %s)\n", f.name, value, f.formatTarget())
		}
		return nil
	}

	// Unary calls, the firehose and latency share one stack. Its streams
	// send without pause, which only KeepGettingCodenames notices.
	sys, err := start(ctx, "CODENAME_STREAM_INTERVAL=0")
	if err != nil {
		return err
	}
	defer sys.stop()
	// Each step measures some figures; -only picks steps by key.
	steps := []struct {
		key, name string
		figures   []string
		f         func() ([]figure, []string, error)
	}{
		{"unary", "unary throughput and CPU", []string{figGRPCRatio, figHAProxyCPU, figRESTRatio, figRESTCPU, figCoRESTRatio, figCoRESTCPU,
			figGRPCWebRatio, figGRPCWebCPU, figConnectRatio, figConnectCPU,
			figTLSGRPCRatio, figTLSRESTRatio, figTLSHAProxyCPU, figTLSHAProxyCost, figTLSRESTCPU, figTLSRESTCost}, func() (figs []figure, details []string, err error) {
			// A second stack, with TLS on the hops behind HAProxy, and a
			// third, with the gateway inside the server, run only for this
			// step, so that they weigh on no other figure. Each has a state
			// folder of its own: it issues certificates of its own for its
			// own ports.
			tlsSys, err := startSystem(ctx, binDir, filepath.Join(work, "state-tls"), haproxyConfig,
				append(slices.Clone(o.env), "CODENAME_STREAM_INTERVAL=0", "CODENAME_BACKEND_TLS=mutual")...)
			if err != nil {
				return nil, nil, fmt.Errorf("TLS backends: %w", err)
			}
			defer tlsSys.stopAfter(&err, "the stack with TLS backends")
			coSys, err := startSystem(ctx, binDir, filepath.Join(work, "state-colocated"), haproxyConfig,
				append(slices.Clone(o.env), "CODENAME_STREAM_INTERVAL=0", "CODENAME_GATEWAY_MODE=colocated")...)
			if err != nil {
				return nil, nil, fmt.Errorf("co-located gateway: %w", err)
			}
			defer coSys.stopAfter(&err, "the co-located stack")
			return measureUnary(ctx, sys, tlsSys, coSys, unaryLoad{o.conns, o.inFlight}, p, work)
		}},
		{"yardsticks", "yardsticks: bare HAProxy, nginx, Caddy, and the cost of each feature", names(yardstickSpecs()), func() ([]figure, []string, error) {
			yp := p
			if o.smoke {
				// Every configuration briefly: the smoke test only proves
				// that each one starts and carries calls. 100 ms was too
				// short on a loaded machine: a fresh HAProxy 3.0 once
				// finished none of its 64 calls in it.
				yp.duration, yp.warmUp = 500*time.Millisecond, 0
			}
			env := slices.Concat(stackEnv, o.env)
			return measureYardsticks(ctx, sys, root, work, haproxyConfig, o.haproxyConfig == "", env, unaryLoad{o.conns, o.inFlight}, yp)
		}},
		{"vanguard", "REST transcoders: grpc-gateway against vanguard-go", []string{figVanguard}, func() ([]figure, []string, error) {
			if vanguardErr != nil {
				return []figure{notMeasured(figVanguard, vanguardErr.Error())}, nil, nil
			}
			return measureVanguard(ctx, sys, vanguardBin, unaryLoad{o.conns, o.inFlight}, p)
		}},
		{"streams", "stream messages/s", []string{figStreamRate, figStreamRatio}, func() ([]figure, []string, error) {
			return measureStreams(ctx, sys, o.firehose, p)
		}},
		{"latency", "latency", []string{figLatencyP50Add, figLatencyP99Add}, func() ([]figure, []string, error) {
			return measureLatency(ctx, sys, p)
		}},
		// Held streams start stacks of their own, after this one stops.
		{"held", "held streams", []string{figHeldStreams, figHeldOpenTime, figHeldErrors, figHeldGoMem, figHeldHAProxy}, func() ([]figure, []string, error) {
			if err := sys.stop(); err != nil {
				return nil, nil, err
			}
			return measureHeld(ctx, start, o.streams, o.rounds)
		}},
		// Each transport on fresh stacks of both modes; the shared stack
		// is stopped first, as for held streams.
		{"transports", "memory per held stream, per transport, process and gateway mode", names(heldTransportSpecs()), func() ([]figure, []string, error) {
			if err := sys.stop(); err != nil {
				return nil, nil, err
			}
			return measureHeldTransports(ctx, start, o.transportStreams, o.rounds)
		}},
	}
	for _, s := range steps {
		if len(o.only) > 0 && !slices.Contains(o.only, s.key) {
			for _, name := range s.figures {
				res.figures = append(res.figures, notMeasured(name, "left out by -only"))
			}
			continue
		}
		if err := step(s.name, s.f); err != nil {
			return err
		}
	}
	res.sortFigures()
	res.about = about(ctx, args, o, started, load0)
	if err := res.write(o.out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s and %s\n", filepath.Join(o.out, "results.md"), filepath.Join(o.out, "results.svg"))
	return nil
}
