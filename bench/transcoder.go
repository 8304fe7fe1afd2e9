package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// buildVanguard builds the vanguard-go transcoder of bench/vanguard into
// dir. It may need to download vanguard-go first, which the rest of the
// benchmark does not need; when it cannot, the figure that needs it is
// left out, not the whole run.
func buildVanguard(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "codename-vanguard")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./vanguard")
	cmd.Dir = filepath.Join(root, "bench")
	if out, err := cmd.CombinedOutput(); err != nil {
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return "", fmt.Errorf("build bench/vanguard: %v: %s", err, first)
	}
	return bin, nil
}

// startVanguard runs bin on a free port in front of the gRPC server at
// grpcAddr, and waits until it answers a REST call.
func startVanguard(ctx context.Context, bin, grpcAddr string) (*proxy, error) {
	addr, err := stack.FreeAddr()
	if err != nil {
		return nil, err
	}
	// The runtime settings the gateway it is compared with runs under.
	env := proxyEnv(fmt.Sprintf("GOMAXPROCS=%d", stack.GoMaxProcs(1)), "GOGC=200")
	return startProxy(ctx, "vanguard", addr, []string{bin, "-addr", addr, "-grpc-addr", grpcAddr}, env,
		func(pid int) group { return single("vanguard", pid) },
		func(ctx context.Context) error { return checkREST(ctx, "http://"+addr+restPath) })
}

// measureVanguard compares the two REST transcoders over the same gRPC
// server, in alternating rounds with the same h2load settings: the
// project's gateway (grpc-gateway) and vanguard-go, each called directly
// over h2c, so that nothing but the transcoder differs.
func measureVanguard(ctx context.Context, sys *system, bin string, load unaryLoad, p plan) ([]figure, []string, error) {
	vg, err := startVanguard(ctx, bin, sys.grpcAddr())
	if err != nil {
		return nil, nil, err
	}
	defer vg.stop()
	run := func(addr string) func(context.Context, time.Duration) (sample, error) {
		return func(ctx context.Context, d time.Duration) (sample, error) {
			job := h2loadJob{url: "http://" + addr + restPath, conns: load.conns, streams: load.streams, duration: d}
			return measureH2load(ctx, sys, job, vg.cpu)
		}
	}
	samples, err := alternate(ctx, p.rounds, p.duration, p.warmUp,
		config[sample]{"REST via the gateway", run(sys.cfg.GatewayAddrs[0])},
		config[sample]{"REST via vanguard-go", run(vg.addr)},
	)
	if err != nil {
		return nil, nil, err
	}
	gw, vgs := samples[0], samples[1]
	rate, cpu := rateOf, cpuOf
	ratio := pairedRatio(each(gw, rate), each(vgs, rate))
	details := []string{
		fmt.Sprintf("REST transcoders, each called directly over h2c (no HAProxy), same h2load settings: calls/s (median) grpc-gateway %.0f, vanguard-go %.0f.",
			median(each(gw, rate)), median(each(vgs, rate))),
		fmt.Sprintf("CPU µs per REST call (median): grpc-gateway %.1f + server %.1f; vanguard-go %.1f + server %.1f.",
			median(each(gw, cpu(procGateway))), median(each(gw, cpu(procServer))),
			median(each(vgs, cpu("vanguard"))), median(each(vgs, cpu(procServer)))),
	}
	return []figure{measured(figVanguard, ratio, "both called directly")}, details, nil
}
