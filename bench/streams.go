package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// measureStreams measures how many codenames KeepGettingCodenames delivers
// per second when the server sends without pause (the stack runs with
// CODENAME_STREAM_INTERVAL=0), direct and through HAProxy, in alternating
// rounds. h2load cannot speak a bidi stream, hence this harness: the same
// Go client for both.
func measureStreams(ctx context.Context, sys *system, streams int, p plan) ([]figure, []string, error) {
	run := func(addr string) func(context.Context, time.Duration) (sample, error) {
		return func(ctx context.Context, d time.Duration) (sample, error) {
			groups := []group{sys.server(), sys.haproxy(), single(procLoad, os.Getpid())}
			return streamRate(ctx, addr, streams, d, groups)
		}
	}
	samples, err := alternate(ctx, p.rounds, p.duration, p.warmUp,
		config[sample]{"stream direct", run(sys.grpcAddr())},
		config[sample]{"stream through HAProxy", run(sys.proxyAddr())},
	)
	if err != nil {
		return nil, nil, err
	}
	direct, proxied := samples[0], samples[1]
	rate, cpu := rateOf, cpuOf
	proxiedRate := each(proxied, rate)
	ratio := pairedRatio(proxiedRate, each(direct, rate))
	figs := []figure{
		measured(figStreamRate, proxiedRate, ""),
		measured(figStreamRatio, ratio, ""),
	}
	details := []string{
		fmt.Sprintf("Streams: %d KeepGettingCodenames streams on one HTTP/2 connection of a Go gRPC client, %v per run; direct %.0f msg/s (median).",
			streams, p.duration, median(each(direct, rate))),
		fmt.Sprintf("CPU µs per streamed message (median): direct, server %.2f and client (this harness) %.2f; through HAProxy, HAProxy %.2f, server %.2f and client %.2f.",
			median(each(direct, cpu(procServer))), median(each(direct, cpu(procLoad))),
			median(each(proxied, cpu(procHAProxy))), median(each(proxied, cpu(procServer))), median(each(proxied, cpu(procLoad)))),
	}
	return figs, details, nil
}

// streamRate opens n KeepGettingCodenames streams to addr on one
// connection, waits for each to deliver its first codename, then counts the
// messages all of them deliver during d, and the CPU groups use meanwhile.
func streamRate(ctx context.Context, addr string, n int, d time.Duration, groups []group) (sample, error) {
	conn, err := dial(addr)
	if err != nil {
		return sample{}, err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		count   atomic.Int64
		started sync.WaitGroup
		wg      sync.WaitGroup
		errMu   sync.Mutex
		errs    []error
	)
	started.Add(n)
	for range n {
		wg.Go(func() {
			first := true
			defer func() {
				if first {
					started.Done()
				}
			}()
			err := func() error {
				stream, err := openCodenames(ctx, conn, "space")
				if err != nil {
					return err
				}
				var res codenamev1.NameResult
				for {
					if err := stream.RecvMsg(&res); err != nil {
						return err
					}
					if first {
						first = false
						started.Done()
					}
					count.Add(1)
				}
			}()
			// Ending the run cancels ctx: that is the expected end.
			if ctx.Err() == nil || status.Code(err) != codes.Canceled {
				errMu.Lock()
				errs = append(errs, err)
				errMu.Unlock()
			}
		})
	}
	started.Wait()
	errMu.Lock()
	failed := len(errs) > 0
	errMu.Unlock()
	if failed {
		cancel()
		wg.Wait()
		return sample{}, errors.Join(errs...)
	}

	meter, err := startCPU(groups...)
	if err != nil {
		return sample{}, err
	}
	c0, t0 := count.Load(), time.Now()
	settle(ctx, d)
	c1, elapsed := count.Load(), time.Since(t0)
	used, err := meter.stop()
	cancel()
	wg.Wait()
	if err != nil {
		return sample{}, err
	}
	if err := errors.Join(errs...); err != nil {
		return sample{}, err
	}
	msgs := float64(c1 - c0)
	if msgs == 0 {
		return sample{}, fmt.Errorf("%s: no message in %v", addr, d)
	}
	return sample{rate: msgs / elapsed.Seconds(), cpu: perOp(used, msgs)}, nil
}
