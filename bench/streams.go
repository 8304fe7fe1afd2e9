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

// streamSample is one run of the KeepGettingCodenames firehose.
type streamSample struct {
	// rate is messages received per second, over every stream.
	rate float64
	// cpu is each process group's CPU time per message, in µs.
	cpu map[string]float64
}

// measureStreams measures how many codenames KeepGettingCodenames delivers
// per second when the server sends without pause (the stack runs with
// CODENAME_STREAM_INTERVAL=0), direct and through HAProxy, in alternating
// rounds. h2load cannot speak a bidi stream, hence this harness: the same
// Go client for both.
func measureStreams(ctx context.Context, sys *system, streams int, p plan) ([]figure, []string, error) {
	run := func(addr string) func(context.Context, time.Duration) (streamSample, error) {
		return func(ctx context.Context, d time.Duration) (streamSample, error) {
			groups := []group{sys.server(), sys.haproxy(), single(procLoad, os.Getpid())}
			return streamRate(ctx, addr, streams, d, groups)
		}
	}
	samples, err := alternate(ctx, p.rounds, p.duration, p.warmUp,
		config[streamSample]{"stream direct", run(sys.grpcAddr())},
		config[streamSample]{"stream through HAProxy", run(sys.proxyAddr())},
	)
	if err != nil {
		return nil, nil, err
	}
	direct, proxied := samples[0], samples[1]
	rate := func(s streamSample) float64 { return s.rate }
	cpu := func(name string) func(streamSample) float64 {
		return func(s streamSample) float64 { return s.cpu[name] }
	}
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
func streamRate(ctx context.Context, addr string, n int, d time.Duration, groups []group) (streamSample, error) {
	conn, err := dial(addr)
	if err != nil {
		return streamSample{}, err
	}
	defer conn.Close()
	client := codenamev1.NewCodenameCreatorClient(conn)
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
				stream, err := client.KeepGettingCodenames(ctx)
				if err != nil {
					return err
				}
				if err := stream.Send(&codenamev1.NameRequest{Category: "space"}); err != nil {
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
		return streamSample{}, errors.Join(errs...)
	}

	meter, err := startCPU(groups...)
	if err != nil {
		return streamSample{}, err
	}
	c0, t0 := count.Load(), time.Now()
	settle(ctx, d)
	c1, elapsed := count.Load(), time.Since(t0)
	used, err := meter.stop()
	cancel()
	wg.Wait()
	if err != nil {
		return streamSample{}, err
	}
	if err := errors.Join(errs...); err != nil {
		return streamSample{}, err
	}
	msgs := float64(c1 - c0)
	if msgs == 0 {
		return streamSample{}, fmt.Errorf("%s: no message in %v", addr, d)
	}
	s := streamSample{rate: msgs / elapsed.Seconds(), cpu: map[string]float64{}}
	for i, g := range groups {
		s.cpu[g.name] = used[i] / msgs * 1e6
	}
	return s, nil
}
