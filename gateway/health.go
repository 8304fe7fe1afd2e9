package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// healthCacheTTL is how long one answer from the server serves every
// /healthz for the same service. HAProxy checks each gateway every 500 ms,
// so a change still shows at its next check; meanwhile a flood of /healthz
// (it is open to anyone, without a key) costs the server at most four
// Checks a second per service instead of one per request.
const healthCacheTTL = 250 * time.Millisecond

// healthCheckTimeout bounds the one Check that callers share, so that a
// server that never answers cannot hold it forever. Each caller waits only
// as long as its own context allows (HAProxy gives up after its `timeout
// check` of 1 s); the bound is longer than that because a gateway busy with
// a flood of requests (the case the cache is for) can take over a second to
// get the answer through, seen with 1000 concurrent /healthz on 2 cores, and
// a failure would be the answer for every caller of the next period.
const healthCheckTimeout = 5 * time.Second

// cachedHealth is the HealthClient behind /healthz. It asks the server at
// most once per healthCacheTTL for each service, callers in the meantime
// sharing the answer or the call in flight; it answers NOT_FOUND without a
// call for a service the server does not register, so that invented names
// cannot multiply the calls; and it answers NOT_SERVING without a call once
// the gateway drains.
type cachedHealth struct {
	healthpb.HealthClient                         // for Watch and List, which /healthz does not use
	services              map[string]*healthEntry // fixed once made
	draining              atomic.Bool
}

// healthEntry holds the latest Check of one service.
type healthEntry struct {
	mu   sync.Mutex
	last *healthCall
}

// healthCall is one Check; res and err are set before done is closed.
type healthCall struct {
	done  chan struct{}
	ended time.Time
	res   *healthpb.HealthCheckResponse
	err   error
}

func newCachedHealth(client healthpb.HealthClient) *cachedHealth {
	c := &cachedHealth{HealthClient: client, services: map[string]*healthEntry{}}
	// The services the server registers with grpc.health.v1: the server as
	// a whole, and CodenameCreator.
	for _, name := range []string{"", codenamev1.CodenameCreator_ServiceDesc.ServiceName} {
		c.services[name] = &healthEntry{}
	}
	return c
}

// Check answers from the latest Check of req's service, if it ended less
// than healthCacheTTL ago, or else from a new one. The call options are ignored: the
// headers and trailers of a shared call belong to no one caller.
func (c *cachedHealth) Check(ctx context.Context, req *healthpb.HealthCheckRequest, _ ...grpc.CallOption) (*healthpb.HealthCheckResponse, error) {
	if c.draining.Load() {
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING}, nil
	}
	e, ok := c.services[req.GetService()]
	if !ok {
		return nil, status.Error(codes.NotFound, "unknown service")
	}
	call := c.latest(e, req.GetService())
	select {
	case <-call.done:
		return call.res, call.err
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

// latest returns the call in flight for e, or the last one if it is fresh,
// or else starts a new one.
func (c *cachedHealth) latest(e *healthEntry, service string) *healthCall {
	e.mu.Lock()
	defer e.mu.Unlock()
	if last := e.last; last != nil {
		select {
		case <-last.done:
			if time.Since(last.ended) < healthCacheTTL {
				return last
			}
		default:
			return last
		}
	}
	call := &healthCall{done: make(chan struct{})}
	e.last = call
	// On a goroutine of its own, and not bound to the context of the
	// caller that happened to start it: the others wait for it too.
	go func() {
		defer close(call.done)
		call.res, call.err = c.check(service)
		call.ended = time.Now()
	}()
	return call
}

// Hedging: a Check that has no answer after healthHedgeAfter is sent again,
// up to healthAttempts calls, and the first answer wins. The balancer sends
// each to the next replica, so a replica whose host vanished (its
// connection looks open for seconds, and a call on it gets no answer)
// cannot hold /healthz past HAProxy's 1 s check timeout while another
// replica answers: otherwise one lost server made HAProxy mark every
// gateway down (e2e TestHostVanishes).
const (
	healthHedgeAfter = 300 * time.Millisecond
	healthAttempts   = 3
)

// check asks the server for service's health, hedged as above; the calls
// still in flight when one answers are cancelled.
func (c *cachedHealth) check(service string) (*healthpb.HealthCheckResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), healthCheckTimeout)
	defer cancel()
	type answer struct {
		res *healthpb.HealthCheckResponse
		err error
	}
	answers := make(chan answer, healthAttempts)
	send := func() {
		go func() {
			res, err := c.HealthClient.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
			answers <- answer{res, err}
		}()
	}
	hedge := time.NewTicker(healthHedgeAfter)
	defer hedge.Stop()
	send()
	sent, failed := 1, 0
	for {
		select {
		case a := <-answers:
			if a.err == nil {
				return a.res, nil
			}
			// An error (the replica went, say) is worth another try
			// at once, while tries remain.
			if failed++; failed == healthAttempts {
				return nil, a.err
			}
			if sent < healthAttempts {
				send()
				sent++
			}
		case <-hedge.C:
			if sent < healthAttempts {
				send()
				sent++
			}
		}
	}
}
