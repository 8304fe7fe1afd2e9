package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// latencySample is the latency of GetCodename over one run.
type latencySample struct{ p50, p99 time.Duration }

// measureLatency measures GetCodename's latency with the same Go gRPC
// client direct and through HAProxy, in alternating rounds: p50 with one
// call in flight (what HAProxy adds to a lone call) and p99 with 50 in
// flight (what it adds under load). One connection each, opened before
// the first round, so no round pays for a handshake.
func measureLatency(ctx context.Context, sys *system, p plan) ([]figure, []string, error) {
	direct, err := dial(sys.grpcAddr())
	if err != nil {
		return nil, nil, err
	}
	defer direct.Close()
	proxied, err := dial(sys.proxyAddr())
	if err != nil {
		return nil, nil, err
	}
	defer proxied.Close()
	run := func(conn *grpc.ClientConn, inFlight int) func(context.Context, time.Duration) (latencySample, error) {
		return func(ctx context.Context, d time.Duration) (latencySample, error) {
			return callLatency(ctx, codenamev1.NewCodenameCreatorClient(conn), inFlight, d)
		}
	}
	one, err := alternate(ctx, p.rounds, p.duration, p.warmUp,
		config[latencySample]{"1 in flight, direct", run(direct, 1)},
		config[latencySample]{"1 in flight, through HAProxy", run(proxied, 1)},
	)
	if err != nil {
		return nil, nil, err
	}
	fifty, err := alternate(ctx, p.rounds, p.duration, p.warmUp,
		config[latencySample]{"50 in flight, direct", run(direct, 50)},
		config[latencySample]{"50 in flight, through HAProxy", run(proxied, 50)},
	)
	if err != nil {
		return nil, nil, err
	}
	ms := func(pick func(latencySample) time.Duration) func(latencySample) float64 {
		return func(s latencySample) float64 { return float64(pick(s)) / float64(time.Millisecond) }
	}
	p50 := ms(func(s latencySample) time.Duration { return s.p50 })
	p99 := ms(func(s latencySample) time.Duration { return s.p99 })
	addP50 := pairedDiff(each(one[1], p50), each(one[0], p50))
	addP99 := pairedDiff(each(fifty[1], p99), each(fifty[0], p99))
	figs := []figure{
		measured(figLatencyP50Add, addP50, ""),
		measured(figLatencyP99Add, addP99, ""),
	}
	details := []string{
		fmt.Sprintf("Latency: one Go gRPC client connection each way, GetCodename, %v per run.", p.duration),
		fmt.Sprintf("1 in flight (median): p50 direct %.3f ms, through HAProxy %.3f ms; p99 direct %.3f ms, through HAProxy %.3f ms.",
			median(each(one[0], p50)), median(each(one[1], p50)), median(each(one[0], p99)), median(each(one[1], p99))),
		fmt.Sprintf("50 in flight (median): p50 direct %.3f ms, through HAProxy %.3f ms; p99 direct %.3f ms, through HAProxy %.3f ms.",
			median(each(fifty[0], p50)), median(each(fifty[1], p50)), median(each(fifty[0], p99)), median(each(fifty[1], p99))),
	}
	return figs, details, nil
}

// callLatency keeps inFlight GetCodename calls going for d and returns the
// percentiles of their durations. Any failed call fails the run.
func callLatency(ctx context.Context, client codenamev1.CodenameCreatorClient, inFlight int, d time.Duration) (latencySample, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deadline := time.Now().Add(d)
	req := &codenamev1.NameRequest{Category: "science"}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		all  []time.Duration
		errs []error
	)
	for range inFlight {
		wg.Go(func() {
			// Each caller keeps its own list, merged once at the end, so
			// that recording costs nothing shared while calls run.
			var mine []time.Duration
			var err error
			for time.Now().Before(deadline) {
				t := time.Now()
				if _, err = client.GetCodename(ctx, req); err != nil {
					cancel()
					break
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			all = append(all, mine...)
			if err != nil {
				errs = append(errs, err)
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return latencySample{}, fmt.Errorf("GetCodename: %w (and %d more)", errs[0], len(errs)-1)
	}
	if len(all) == 0 {
		return latencySample{}, fmt.Errorf("no call finished in %v", d)
	}
	slices.Sort(all)
	return latencySample{p50: percentile(all, 0.50), p99: percentile(all, 0.99)}, nil
}

// percentile returns the q-quantile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
