package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// streamsPerConn is how many streams the harness opens on one HTTP/2
// connection to HAProxy: HAProxy allows 100 concurrent streams per client
// connection (tune.h2.max-concurrent-streams), and grpc-go queues a stream
// over that limit instead of opening another connection. So N streams take
// N/100 connections, well under haproxy.cfg's maxconn 4096 up to 400k
// streams.
const streamsPerConn = 100

// heldSample is one round of holding streams on a fresh stack.
type heldSample struct {
	opened, errors int
	openTime       time.Duration
	// Bytes per held stream: the server's RSS, the Go runtime's heap and
	// goroutine stacks in the server, and HAProxy's workers' RSS.
	serverRSS, serverHeap, serverStacks, haproxyRSS float64
	// haproxyPools is the growth of HAProxy's memory pools, per stream.
	haproxyPools float64
	// firstErr is the first error a stream met, if any.
	firstErr error
	// openCPU is the CPU time each process group used while the streams
	// opened, in seconds: what the opening time is spent on.
	openCPU map[string]float64
}

// heldStreamEnv gives every stream a long pause between codenames: a held
// stream gets its first codename at once, then stays quiet, as a client
// waiting for updates would.
const heldStreamEnv = "CODENAME_STREAM_INTERVAL=1h"

// measureHeld opens n bidi streams through HAProxy, in each of rounds
// rounds on a fresh stack (memory that a process has once taken is not
// given back to the OS, so a second round on the same processes would
// measure less), and reads what holding them costs.
func measureHeld(ctx context.Context, start starter, n, rounds int) ([]figure, []string, error) {
	var samples []heldSample
	for r := range rounds {
		s, err := onFreshStack(ctx, start, []string{heldStreamEnv}, func(sys *system) (heldSample, error) {
			return holdStreams(ctx, sys, n)
		})
		if err != nil {
			return nil, nil, fmt.Errorf("held streams (round %d): %w", r+1, err)
		}
		samples = append(samples, s)
	}
	opened := each(samples, func(s heldSample) float64 { return float64(s.opened) })
	secs := each(samples, func(s heldSample) float64 { return s.openTime.Seconds() })
	errs := each(samples, func(s heldSample) float64 { return float64(s.errors) })
	kb := func(pick func(heldSample) float64) []float64 {
		return each(samples, func(s heldSample) float64 { return pick(s) / 1024 })
	}
	goRSS := kb(func(s heldSample) float64 { return s.serverRSS })
	goHeap := kb(func(s heldSample) float64 { return s.serverHeap })
	goStacks := kb(func(s heldSample) float64 { return s.serverStacks })
	hapRSS := kb(func(s heldSample) float64 { return s.haproxyRSS })
	hapPools := kb(func(s heldSample) float64 { return s.haproxyPools })
	note := fmt.Sprintf("%d asked", n)
	figs := []figure{
		measured(figHeldStreams, opened, note),
		measured(figHeldOpenTime, secs, note),
		measured(figHeldErrors, errs, note),
		measured(figHeldGoMem, goRSS, fmt.Sprintf("Go heap %.1f KB + goroutine stacks %.1f KB", median(goHeap), median(goStacks))),
		measured(figHeldHAProxy, hapRSS, fmt.Sprintf("HAProxy's pools: %.1f KB", median(hapPools))),
	}
	details := []string{
		fmt.Sprintf("Held streams: %d KeepGettingCodenames streams through HAProxy's cleartext listener, %d per HTTP/2 connection, all started at once (connections included) on a fresh stack each round; a stream is open when its first message arrives; memory is read 1 s before and 1 s after, per stream.",
			n, streamsPerConn),
	}
	cpu := func(name string) float64 {
		return median(each(samples, func(s heldSample) float64 { return s.openCPU[name] }))
	}
	details = append(details, fmt.Sprintf("CPU seconds used while the streams opened (median): server %.2f, HAProxy %.2f, this harness (the clients) %.2f; in %.2f s on %d cores.",
		cpu(procServer), cpu(procHAProxy), cpu(procLoad), median(secs), runtime.NumCPU()))
	for i, s := range samples {
		if s.firstErr != nil {
			details = append(details, fmt.Sprintf("Held streams, round %d: %d errors; the first: %v", i+1, s.errors, s.firstErr))
		}
	}
	return figs, details, nil
}

// holdStreams opens n KeepGettingCodenames streams through HAProxy and
// measures the time to open them all and the memory they hold.
func holdStreams(ctx context.Context, sys *system, n int) (heldSample, error) {
	settle(ctx, time.Second)
	before, err := heldMemory(ctx, sys)
	if err != nil {
		return heldSample{}, err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conns := make([]*grpc.ClientConn, (n+streamsPerConn-1)/streamsPerConn)
	for i := range conns {
		if conns[i], err = dial(sys.proxyAddr()); err != nil {
			return heldSample{}, err
		}
		defer conns[i].Close()
	}
	var (
		opened, failed atomic.Int64
		firstErr       error
		errOnce        sync.Once
		ready, wg      sync.WaitGroup
	)
	fail := func(err error) {
		failed.Add(1)
		errOnce.Do(func() { firstErr = err })
	}
	groups := []group{sys.server(), sys.haproxy(), single(procLoad, os.Getpid())}
	meter, err := startCPU(groups...)
	if err != nil {
		return heldSample{}, err
	}
	t0 := time.Now()
	ready.Add(n)
	for i := range n {
		wg.Go(func() {
			stream, err := openCodenames(ctx, conns[i/streamsPerConn], "animals")
			if err == nil {
				_, err = stream.Recv()
			}
			ready.Done()
			if err != nil {
				fail(err)
				return
			}
			opened.Add(1)
			// Hold the stream, and notice if it ends before we end it.
			_, err = stream.Recv()
			if ctx.Err() == nil || status.Code(err) != codes.Canceled {
				fail(fmt.Errorf("held stream ended: %w", err))
			}
		})
	}
	ready.Wait()
	openTime := time.Since(t0)
	openCPU, err := meter.stop()
	if err != nil {
		return heldSample{}, err
	}

	settle(ctx, time.Second)
	after, err := heldMemory(ctx, sys)
	if err != nil {
		return heldSample{}, err
	}
	m, err := scrape(ctx, sys.serverAdminAddr())
	if err != nil {
		return heldSample{}, err
	}
	// The server's own count proves the streams reached it.
	if got := m.sum("codename_open_streams", nil); got != float64(opened.Load()) {
		fail(fmt.Errorf("the server holds %v streams, the client %d", got, opened.Load()))
	}
	cancel()
	wg.Wait()

	s := heldSample{opened: int(opened.Load()), errors: int(failed.Load()), openTime: openTime, firstErr: firstErr, openCPU: openCPU}
	if firstErr != nil {
		// HAProxy says in its log when it took a server out, which is
		// what a burst of 503s usually means.
		if down := sys.logLines(" is DOWN", 2); len(down) > 0 {
			s.firstErr = fmt.Errorf("%w (HAProxy: %s)", firstErr, strings.Join(down, "; "))
		}
	}
	if s.opened == 0 {
		return s, fmt.Errorf("no stream opened: %w", firstErr)
	}
	if s.opened+s.errors < n {
		return s, errors.New("lost count of streams")
	}
	per := float64(s.opened)
	s.serverRSS = (after.serverRSS - before.serverRSS) / per
	s.serverHeap = (after.serverHeap - before.serverHeap) / per
	s.serverStacks = (after.serverStacks - before.serverStacks) / per
	s.haproxyRSS = (after.haproxyRSS - before.haproxyRSS) / per
	s.haproxyPools = (after.haproxyPools - before.haproxyPools) / per
	return s, nil
}

// heldMem is the memory of the stack's processes at one moment, in bytes.
type heldMem struct {
	serverRSS, serverHeap, serverStacks, haproxyRSS, haproxyPools float64
}

func heldMemory(ctx context.Context, sys *system) (heldMem, error) {
	var m heldMem
	var err error
	if m.serverRSS, err = sys.server().rss(); err != nil {
		return m, err
	}
	if m.haproxyRSS, err = sys.haproxy().rss(); err != nil {
		return m, err
	}
	metrics, err := scrape(ctx, sys.serverAdminAddr())
	if err != nil {
		return m, err
	}
	m.serverHeap = metrics.sum("go_memstats_heap_inuse_bytes", nil)
	m.serverStacks = metrics.sum("go_memstats_stack_inuse_bytes", nil)
	// HAProxy's exporter tells what its pools hold, which its RSS only
	// bounds from above: pools keep what they once allocated.
	hm, err := scrape(ctx, sys.statsAddr())
	if err != nil {
		return m, err
	}
	m.haproxyPools = hm.sum("haproxy_process_pool_used_bytes", nil)
	return m, nil
}
