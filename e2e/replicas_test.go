package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/poll"
	"github.com/codename-gateway/codename-gateway/internal/promtest"
	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// handled returns how many GetCodename calls each server replica finished
// with OK, from its metrics.
func (s *system) handled(t *testing.T) []float64 {
	t.Helper()
	var n []float64
	for _, a := range s.cfg.GRPCAdminAddrs {
		n = append(n, metricValue(t, s.get(t, "http://"+a+"/metrics"), "grpc_server_handled_total", map[string]string{"grpc_code": "OK", "grpc_method": "GetCodename"}))
	}
	return n
}

func checkEven(t *testing.T, what string, before, after []float64, total int) {
	t.Helper()
	want := float64(total) / float64(len(after))
	for i := range after {
		got := after[i] - before[i]
		if got < 0.8*want || got > 1.2*want {
			t.Errorf("%s: replica %d took %v of %d calls, want %v ± 20%% (all: before %v, after %v)", what, i+1, got, total, want, before, after)
		}
	}
}

// TestReplicasSpreadPerRequest: calls on ONE client connection are spread
// over three replicas, call by call.
func TestReplicasSpreadPerRequest(t *testing.T) {
	const calls = 300
	// Separate: each gateway's own spreading over the servers is tested.
	s := start(t, replicas(3), gatewayMode(stack.Separate))
	client := s.grpcClient(t, true)
	before := s.handled(t)
	for range calls {
		if _, err := client.GetCodename(t.Context(), &codenamev1.NameRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	checkEven(t, "gRPC through HAProxy", before, s.handled(t), calls)

	// REST: HAProxy spreads over the gateways, each gateway over servers.
	gatewayCalls := func() []float64 {
		var n []float64
		for _, a := range s.cfg.GatewayAdminAddrs {
			// A count not yet created is zero so far.
			v, _ := promtest.Sum(s.get(t, "http://"+a+"/metrics"), "grpc_client_handled_total", map[string]string{"grpc_method": "GetCodename"})
			n = append(n, v)
		}
		return n
	}
	c := transports[1].client(t, s) // one HTTP/2 connection
	beforeGW, before := gatewayCalls(), s.handled(t)
	for range calls {
		if resp, b := do(t, c, "GET", s.httpsURL("/v1/codename"), "", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s", resp.Status, b)
		}
	}
	checkEven(t, "REST over the gateways", beforeGW, gatewayCalls(), calls)
	checkEven(t, "REST on to the servers", before, s.handled(t), calls)
}

// TestFailoverOnSIGKILL: one of two replicas dies under unary load, and no
// call fails but those the dying replica was in the middle of answering
// (gRPC only; see checkAfterKill): HAProxy and the gateways retry the
// idempotent unary calls on the other replica and stop sending to the dead
// one.
func TestFailoverOnSIGKILL(t *testing.T) {
	s := start(t, replicas(2))
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
	defer cancel()
	grpcLoad, restLoad := unaryLoads(t, ctx, s, true, transports[1], "/v1/codename", 4)

	poll.For(t, "some load", 10*time.Second, func() error { return okPast(100, grpcLoad, restLoad) })
	victim := s.Process("server-2")
	if err := victim.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.Done()
	grpcLoad.checkAfterKill(t, "gRPC unary")
	// The gateways retry such a call on the other server themselves.
	restLoad.check(t, "REST unary")
	for _, be := range []string{"be_grpc", "be_grpc_stream"} {
		if !s.serverState(t, be, "grpc2", "DOWN") {
			t.Errorf("HAProxy has not marked %s/grpc2 down", be)
		}
	}
}

// TestHitlessReloads: ten HAProxy reloads under load lose no call, and
// streams opened before them go on.
func TestHitlessReloads(t *testing.T) {
	const reloads = 10
	s := start(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	stream := openCodenames(t, ctx, s.grpcClient(t, true), "space")
	ws, _, err := dialWS(t, s, true, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"category":"science"}`)); err != nil {
		t.Fatal(err)
	}
	readWS(t, ctx, ws)

	loadCtx, stopLoad := context.WithCancel(ctx)
	grpcLoad, restLoad := unaryLoads(t, loadCtx, s, false, transports[0], "/v1/codename", 4)
	poll.For(t, "some load", 10*time.Second, func() error { return okPast(50, grpcLoad, restLoad) })

	for i := 1; i <= reloads; i++ {
		if err := s.Reload(); err != nil {
			t.Fatal(err)
		}
		poll.For(t, fmt.Sprintf("reload %d", i), 10*time.Second, func() error {
			if n := strings.Count(s.log.String(), "Loading success."); n < i+1 {
				return fmt.Errorf("%d lines \"Loading success.\", want %d", n, i+1)
			}
			return nil
		})
		// Some calls between reloads, on whichever worker is current.
		n := grpcLoad.ok.Load()
		poll.For(t, "calls after the reload", 10*time.Second, func() error { return okPast(n+20, grpcLoad) })
	}
	stopLoad()
	grpcLoad.checkAfterKill(t, "gRPC unary")
	// The gateways retry such a call on the other server themselves.
	restLoad.check(t, "REST unary")

	for range 3 {
		res, err := stream.Recv()
		if err != nil {
			t.Fatalf("gRPC stream after %d reloads: %v", reloads, err)
		}
		if categoryOf(res.GetName()) != "space" {
			t.Errorf("got %q, want space codenames", res.GetName())
		}
	}
	if l := readWS(t, ctx, ws); l.Result == nil {
		t.Errorf("WebSocket after %d reloads: %+v", reloads, l)
	}
}

// TestReplicaDrainsOnSIGTERM: a replica told to stop reports NOT_SERVING,
// HAProxy moves calls away from it without one failing, its open stream
// ends with UNAVAILABLE (the other replica's goes on), and it exits.
func TestReplicaDrainsOnSIGTERM(t *testing.T) {
	s := start(t, replicas(2), withEnv("CODENAME_DRAIN_DELAY=1500ms"))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	client := s.grpcClient(t, true)

	// leastconn puts one stream on each replica.
	var streams []codenamev1.CodenameCreator_KeepGettingCodenamesClient
	for range 2 {
		st, err := client.KeepGettingCodenames(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Send(&codenamev1.NameRequest{}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
		streams = append(streams, st)
	}
	if got := metricValue(t, s.get(t, "http://"+s.cfg.GRPCAdminAddrs[0]+"/metrics"), "codename_open_streams", nil); got != 1 {
		t.Fatalf("server-1 holds %v streams, want 1", got)
	}

	loadCtx, stopLoad := context.WithCancel(ctx)
	grpcLoad := grpcUnaryLoad(loadCtx, client, 4)
	restLoad := restUnaryLoad(loadCtx, transports[1].client(t, s), s.httpsURL("/v1/codename"), 4)
	poll.For(t, "some load", 10*time.Second, func() error { return okPast(50, grpcLoad, restLoad) })

	drainProcess(t, s, "server-1", "http://"+s.cfg.GRPCAdminAddrs[0]+"/healthz", grpcLoad, 50)
	stopLoad()
	grpcLoad.checkAfterKill(t, "gRPC unary")
	// The gateways retry such a call on the other server themselves.
	restLoad.check(t, "REST unary")

	ended, alive := 0, 0
	for _, st := range streams {
		var err error
		// Codenames sent before the drain are still buffered; the ended
		// stream reports its status after them.
		for i := 0; i < 40 && err == nil; i++ {
			_, err = st.Recv()
		}
		switch {
		case err == nil:
			alive++
		case status.Code(err) == codes.Unavailable:
			ended++
		default:
			t.Errorf("stream ended with %v, want Unavailable", err)
		}
	}
	if ended != 1 || alive != 1 {
		t.Errorf("%d streams ended and %d went on, want 1 and 1", ended, alive)
	}
	if strings.Contains(s.log.String(), "drain timed out") {
		t.Error("server-1 needed its drain timeout: something held the graceful stop open")
	}
}
