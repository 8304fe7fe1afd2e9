package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// sample is one run of one configuration: of unary calls (h2load's) or of
// streamed messages (streamRate's).
type sample struct {
	// rate is successful calls, or messages received, per second.
	rate float64
	// cpu is each process group's CPU time per call or message, in µs.
	cpu map[string]float64
	// p99 is the run's 99th percentile latency, if the job logged it.
	p99 time.Duration
}

// rateOf is a sample's rate, for each.
func rateOf(s sample) float64 { return s.rate }

// cpuOf is, for each, a sample's CPU per call or message in the groups
// called names, together.
func cpuOf(names ...string) func(sample) float64 {
	return func(s sample) float64 {
		var t float64
		for _, n := range names {
			t += s.cpu[n]
		}
		return t
	}
}

// config is one way of serving the same calls (direct to the server,
// through HAProxy, through HAProxy and the gateway ...), measured once per
// call of measure.
type config[T any] struct {
	name    string
	measure func(ctx context.Context, d time.Duration) (T, error)
}

// alternate measures every configuration for d once per round, in the same
// order each round (A, B, C, A, B, C ...), after a warm-up run of each for
// warmUp (none if zero) that is not kept: the first calls on a connection
// pay for the handshake, for filling pools and for growing heaps. The machine is shared and its load drifts: interleaving spreads
// the drift over every configuration alike, and pairing the configurations
// of one round (see pairedRatio) cancels most of what is left.
// It returns the samples of each configuration, one per round, in order.
func alternate[T any](ctx context.Context, rounds int, d, warmUp time.Duration, configs ...config[T]) ([][]T, error) {
	if warmUp > 0 {
		for _, c := range configs {
			if _, err := c.measure(ctx, warmUp); err != nil {
				return nil, fmt.Errorf("%s (warm-up): %w", c.name, err)
			}
		}
	}
	samples := make([][]T, len(configs))
	for r := range rounds {
		for i, c := range configs {
			s, err := c.measure(ctx, d)
			if err != nil {
				return nil, fmt.Errorf("%s (round %d): %w", c.name, r+1, err)
			}
			samples[i] = append(samples[i], s)
		}
	}
	return samples, nil
}

// median returns the median of xs (the mean of the middle two when their
// number is even), or 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// each applies f to every sample.
func each[T any](samples []T, f func(T) float64) []float64 {
	out := make([]float64, len(samples))
	for i, s := range samples {
		out[i] = f(s)
	}
	return out
}

// pairedRatio returns, for each round, a's value over b's value, measured
// side by side in that round.
func pairedRatio(a, b []float64) []float64 {
	out := make([]float64, min(len(a), len(b)))
	for i := range out {
		out[i] = a[i] / b[i]
	}
	return out
}

// pairedDiff returns, for each round, a's value minus b's.
func pairedDiff(a, b []float64) []float64 {
	out := make([]float64, min(len(a), len(b)))
	for i := range out {
		out[i] = a[i] - b[i]
	}
	return out
}

// plan says how long and how often each configuration runs.
type plan struct {
	rounds           int
	duration, warmUp time.Duration
}
