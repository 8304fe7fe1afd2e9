package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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

// transcoder is a running codename-vanguard, in front of a stack's server.
type transcoder struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

// startVanguard runs bin on a free port in front of the gRPC server at
// grpcAddr, and waits until it answers a REST call.
func startVanguard(ctx context.Context, bin, grpcAddr string) (*transcoder, error) {
	addr, err := stack.FreeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-addr", addr, "-grpc-addr", grpcAddr)
	// The runtime settings the gateway it is compared with runs under.
	cmd.Env = append(os.Environ(), fmt.Sprintf("GOMAXPROCS=%d", stack.GoMaxProcs(1)), "GOGC=200")
	// Dies with us, like the stack's children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	t := &transcoder{cmd: cmd, addr: addr, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(t.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := checkREST(ctx, "http://"+addr+"/v1/codename?category=science")
		if err == nil {
			return t, nil
		}
		select {
		case <-t.done:
			return nil, fmt.Errorf("codename-vanguard exited: %v", cmd.ProcessState)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.stop()
			return nil, fmt.Errorf("codename-vanguard not ready: %w", err)
		}
	}
}

func (t *transcoder) pid() int { return t.cmd.Process.Pid }

// stop ends the transcoder (by its PID) and waits for it.
func (t *transcoder) stop() {
	_ = t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(5 * time.Second):
		_ = t.cmd.Process.Kill()
		<-t.done
	}
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
	vanguardProc := single("vanguard", vg.pid())
	const path = "/v1/codename?category=science"
	run := func(addr string) func(context.Context, time.Duration) (unarySample, error) {
		return func(ctx context.Context, d time.Duration) (unarySample, error) {
			job := h2loadJob{url: "http://" + addr + path, conns: load.conns, streams: load.streams, duration: d}
			return measureH2load(ctx, sys, job, vanguardProc)
		}
	}
	samples, err := alternate(ctx, p.rounds, p.duration, p.warmUp,
		config[unarySample]{"REST via the gateway", run(sys.cfg.GatewayAddrs[0])},
		config[unarySample]{"REST via vanguard-go", run(vg.addr)},
	)
	if err != nil {
		return nil, nil, err
	}
	gw, vgs := samples[0], samples[1]
	rate := func(s unarySample) float64 { return s.rate }
	cpu := func(name string) func(unarySample) float64 {
		return func(s unarySample) float64 { return s.cpu[name] }
	}
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
