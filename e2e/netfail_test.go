package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/poll"
)

// streamEndLimit is how soon a stream whose backend host vanished must end,
// so that its client can reconnect to a live replica.
const streamEndLimit = 10 * time.Second

// follower keeps one codename stream open through the edge, and opens it
// again whenever it ends, as a client that acts on the end would. It
// counts the messages and notes every end.
type follower struct {
	kind string
	got  atomic.Int64
	last atomic.Int64 // when the last message came, in UnixNano
	mu   sync.Mutex
	ends []streamEnd
	// refused lists the opens that failed.
	refused []streamEnd
}

// streamEnd is one end of a follower's stream.
type streamEnd struct {
	at time.Time
	// how is what the client saw.
	how string
	// actionable says whether it is a status a client acts on by
	// reconnecting: UNAVAILABLE (or, through HAProxy, INTERNAL "without
	// trailers", DESIGN.md), a REST error line or event with code 14, a
	// WebSocket closed with 1012 (service restart).
	actionable bool
}

// streamOpener opens one stream; next returns nil per codename received,
// and the error that ended the stream otherwise.
type streamOpener func(ctx context.Context) (next func() error, closeFn func(), err error)

// restEnd is a REST stream's last word: an error line, event or message.
type restEnd struct {
	code    int
	message string
}

func (e *restEnd) Error() string { return fmt.Sprintf("error %d: %s", e.code, e.message) }

// parseRESTEnd reads {"error":{...}} from b.
func parseRESTEnd(b string) error {
	var line streamLine
	if err := json.Unmarshal([]byte(b), &line); err != nil || line.Error == nil {
		return fmt.Errorf("unexpected message %q", b)
	}
	return &restEnd{line.Error.Code, line.Error.Message}
}

// classify says how a stream of kind ended through HAProxy b, and whether
// that is actionable.
func classify(b haproxyBuild, kind string, err error) (string, bool) {
	var re *restEnd
	switch {
	case kind == "gRPC":
		st := status.Convert(err)
		return st.Code().String() + ": " + st.Message(), st.Code() == codes.Unavailable || b.cutStream(err)
	case kind == "WebSocket":
		code := websocket.CloseStatus(err)
		return fmt.Sprintf("close %d: %v", code, err), code == websocket.StatusServiceRestart
	case errors.As(err, &re):
		return re.Error(), re.code == int(codes.Unavailable)
	default:
		return err.Error(), false
	}
}

// follow runs a follower of kind until ctx ends.
func follow(ctx context.Context, wg *sync.WaitGroup, b haproxyBuild, kind string, open streamOpener) *follower {
	f := &follower{kind: kind}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			next, closeFn, err := open(ctx)
			if err == nil {
				// Raw connections do not watch ctx: closing them ends
				// a read in progress.
				unwatch := context.AfterFunc(ctx, closeFn)
				for err = next(); err == nil; err = next() {
					f.got.Add(1)
					f.last.Store(time.Now().UnixNano())
				}
				unwatch()
				closeFn()
			}
			if ctx.Err() != nil {
				return
			}
			how, ok := classify(b, kind, err)
			f.mu.Lock()
			if next == nil {
				f.refused = append(f.refused, streamEnd{time.Now(), how, false})
			} else {
				f.ends = append(f.ends, streamEnd{time.Now(), how, ok})
			}
			f.mu.Unlock()
			// A client's back-off before it reconnects.
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return f
}

func (f *follower) endsSince(t0 time.Time) []streamEnd {
	f.mu.Lock()
	defer f.mu.Unlock()
	return since(f.ends, t0)
}

func (f *follower) refusedSince(t0 time.Time) []streamEnd {
	f.mu.Lock()
	defer f.mu.Unlock()
	return since(f.refused, t0)
}

func since(all []streamEnd, t0 time.Time) []streamEnd {
	var ends []streamEnd
	for _, e := range all {
		if !e.at.Before(t0) {
			ends = append(ends, e)
		}
	}
	return ends
}

// receivedSince says whether a codename came after t.
func (f *follower) receivedSince(t time.Time) bool {
	return f.last.Load() > t.UnixNano()
}

// openers are the four kinds of codename stream, opened through h's edge
// in cleartext, from the client host.
func openers(t *testing.T, h *hostNet) map[string]streamOpener {
	s := h.sys
	addr := s.cfg.HTTPAddr
	client := h.grpcClient(t)
	wsClient := &http.Client{Transport: h.httpTransport(t)}
	return map[string]streamOpener{
		"gRPC": func(ctx context.Context) (func() error, func(), error) {
			ctx, cancel := context.WithCancel(ctx)
			stream, err := client.KeepGettingCodenames(ctx)
			if err == nil {
				err = stream.Send(&codenamev1.NameRequest{Category: "space"})
			}
			if err != nil {
				cancel()
				return nil, nil, err
			}
			return func() error { _, err := stream.Recv(); return err }, cancel, nil
		},
		"NDJSON": func(ctx context.Context) (func() error, func(), error) {
			conn, resp, err := dialNDJSONStream(h.dial, addr, `{"category":"science"}`)
			if err != nil {
				return nil, nil, err
			}
			r := bufio.NewReader(resp.Body)
			return func() error {
				line, err := r.ReadString('\n')
				switch {
				case err != nil:
					return fmt.Errorf("connection ended without an error line: %w", err)
				case strings.Contains(line, `"result"`):
					return nil
				}
				return parseRESTEnd(line)
			}, func() { conn.Close() }, nil
		},
		"SSE": func(ctx context.Context) (func() error, func(), error) {
			conn, r, err := dialSSEStream(h.dial, addr, "animals")
			if err != nil {
				return nil, nil, err
			}
			return func() error {
				for {
					line, err := r.ReadString('\n')
					switch {
					case err != nil:
						return fmt.Errorf("connection ended without an error event: %w", err)
					case strings.HasPrefix(line, `data: {"result"`):
						return nil
					case strings.HasPrefix(line, "data: "):
						return parseRESTEnd(strings.TrimPrefix(line, "data: "))
					}
				}
			}, func() { conn.Close() }, nil
		},
		"WebSocket": func(ctx context.Context) (func() error, func(), error) {
			dialCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			ws, _, err := websocket.Dial(dialCtx, wsURL(s, false), &websocket.DialOptions{HTTPClient: wsClient})
			if err != nil {
				return nil, nil, err
			}
			if err := ws.Write(ctx, websocket.MessageText, []byte(`{"category":"science"}`)); err != nil {
				ws.CloseNow()
				return nil, nil, err
			}
			return func() error {
				// The final {"error"} message comes before the close,
				// whose code is what the page acts on.
				for {
					_, b, err := ws.Read(ctx)
					if err != nil || strings.Contains(string(b), `"result"`) {
						return err
					}
				}
			}, func() { ws.CloseNow() }, nil
		},
	}
}

// followAll starts n followers of each kind through h's edge.
func followAll(t *testing.T, ctx context.Context, h *hostNet, n int) ([]*follower, *sync.WaitGroup) {
	var wg sync.WaitGroup
	var fs []*follower
	open := openers(t, h)
	for _, kind := range streamKinds {
		for range n {
			fs = append(fs, follow(ctx, &wg, haproxyUnderTest(t), kind, open[kind]))
		}
	}
	return fs, &wg
}

// awaitReceiving waits until every follower has received a codename after
// since.
func awaitReceiving(t *testing.T, fs []*follower, since time.Time, limit time.Duration) {
	t.Helper()
	if d, ok := poll.Until(limit, func() bool {
		for _, f := range fs {
			if !f.receivedSince(since) {
				return false
			}
		}
		return true
	}); !ok {
		for _, f := range fs {
			if !f.receivedSince(since) {
				t.Errorf("%s stream receives nothing after %v (%d codenames so far, ends %v)", f.kind, d, f.got.Load(), f.endsSince(time.Time{}))
			}
		}
		t.FailNow()
	}
}

// ip runs `ip` in the namespace of host.
func (h *hostNet) ip(t *testing.T, host string, args ...string) {
	t.Helper()
	args = append([]string{"-n", h.net.Host(host).Netns}, args...)
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// netLoad is the load the network-failure tests keep up through the edge:
// unary gRPC and REST calls, and four streams of each kind.
type netLoad struct {
	grpc, rest *load
	streams    []*follower
	followers  *sync.WaitGroup
	stop       context.CancelFunc
}

// streamKinds are the kinds of codename stream a client can open.
var streamKinds = []string{"gRPC", "NDJSON", "SSE", "WebSocket"}

// startNetLoad starts the load on h, and waits until every stream
// receives and each server takes calls.
func startNetLoad(t *testing.T, h *hostNet) *netLoad {
	t.Helper()
	ctx, stop := context.WithCancel(t.Context())
	t.Cleanup(stop)
	l := &netLoad{
		grpc: grpcUnaryLoad(ctx, h.grpcClient(t), 4),
		rest: restUnaryLoad(ctx, &http.Client{Transport: h.httpTransport(t)}, h.sys.httpURL("/v1/codename"), 4),
		stop: stop,
	}
	l.streams, l.followers = followAll(t, ctx, h, 4)
	awaitReceiving(t, l.streams, time.Now(), 15*time.Second)
	if from := h.net.Host("client").Addr + ":"; !strings.Contains(h.sys.log.String(), " "+from) {
		t.Fatalf("HAProxy logged no request from the client host (%s)", from)
	}
	h.awaitCalls(t, 1, "server1", "server2")
	return l
}

// recovered waits until every stream has received a codename a second
// after what happened at t0 (what was sent before it has arrived by
// then: the stream interval is 100 ms), then checks the streams' ends
// since t0 (checkStreams).
func (l *netLoad) recovered(t *testing.T, t0 time.Time, what string, cutOK bool) map[string]int {
	t.Helper()
	awaitReceiving(t, l.streams, t0.Add(time.Second), streamEndLimit+5*time.Second)
	t.Logf("%s: every stream received again after %v", what, time.Since(t0).Round(time.Millisecond))
	return l.checkStreams(t, t0, what, cutOK)
}

// checkStreams checks every end of a stream and every refused open since
// t0: ends must come within streamEndLimit with a status to reconnect on
// (or, if cutOK, any end at all), opens must succeed. It returns the
// number of ends per kind.
func (l *netLoad) checkStreams(t *testing.T, t0 time.Time, what string, cutOK bool) map[string]int {
	t.Helper()
	ended := map[string]int{}
	var slowest time.Duration
	for _, f := range l.streams {
		for _, e := range f.endsSince(t0) {
			ended[f.kind]++
			after := e.at.Sub(t0)
			slowest = max(slowest, after)
			if cutOK {
				t.Logf("%s stream ended %v after %s: %s", f.kind, after.Round(time.Millisecond), what, e.how)
			}
			if after > streamEndLimit || !e.actionable && !cutOK {
				t.Errorf("%s stream ended %v after %s with %s; want within %v, with a status to reconnect on", f.kind, after.Round(time.Millisecond), what, e.how, streamEndLimit)
			}
		}
		for _, e := range f.refusedSince(t0) {
			t.Errorf("%s stream could not be opened %v after %s: %s", f.kind, e.at.Sub(t0).Round(time.Millisecond), what, e.how)
		}
	}
	t.Logf("after %s: streams ended %v (per kind), the last %v after", what, ended, slowest.Round(time.Millisecond))
	return ended
}

// finish stops the load and checks that no unary call failed.
func (l *netLoad) finish(t *testing.T) {
	t.Helper()
	l.stop()
	l.followers.Wait()
	l.grpc.check(t, "gRPC unary through HAProxy")
	l.rest.check(t, "REST unary through HAProxy and the gateways")
}

// TestHostVanishes: under load, the host of one server vanishes without a
// word (its link goes down). Unary calls lose nothing; every stream that
// was on it ends within streamEndLimit with a status its client acts on,
// and reconnects to the other server; when the host is back, it takes
// traffic again within seconds.
func TestHostVanishes(t *testing.T) {
	t.Parallel() // on hosts of its own: see onHosts
	h := start(t, onHosts("server1", "server2")).hosts
	vanish(t, h, startNetLoad(t, h))
}

// vanish takes server1's link down under l, checks what the clients see,
// and brings it back.
func vanish(t *testing.T, h *hostNet, l *netLoad) {
	t.Helper()
	// server1's count while it is gone cannot be read; it cannot grow
	// either.
	before := h.handled(t)
	h.ip(t, "server1", "link", "set", "eth0", "down")
	gone := time.Now()
	// Every stream receives again: those on server2 never stopped, those
	// on server1 ended and reconnected to server2. (What a stream on
	// server1 received after a second was sent before its host vanished:
	// the stream interval is 100 ms.)
	ended := l.recovered(t, gone, "server1's host vanished", false)
	if ended["gRPC"] == 0 || ended["NDJSON"]+ended["SSE"]+ended["WebSocket"] == 0 {
		t.Errorf("streams ended %v: want some gRPC and some REST streams on the vanished host to end", ended)
	}

	h.ip(t, "server1", "link", "set", "eth0", "up")
	back := time.Now()
	if took, ok := poll.Until(20*time.Second, func() bool { return h.handled(t)["server1"] > before["server1"] }); !ok {
		t.Errorf("server1 took no call %v after its host came back", took)
	}
	t.Logf("server1's host came back: it took calls again after %v", time.Since(back).Round(time.Millisecond))
	l.finish(t)
}

// TestPartitionGatewaysFromOneServer: the network between the gateways
// and server1 fails (both ways), while HAProxy still reaches it. REST
// calls lose nothing; REST streams on server1 end within streamEndLimit
// with code 14 and reconnect to server2; gRPC streams, which HAProxy sends
// to server1 directly, go on. When the partition heals, the gateways call
// server1 again within seconds.
func TestPartitionGatewaysFromOneServer(t *testing.T) {
	t.Parallel() // on hosts of its own: see onHosts
	h := start(t, onHosts("server1", "server2")).hosts
	l := startNetLoad(t, h)
	server1 := h.net.Host("server1").Addr
	routes := [][2]string{{"gateway1", server1}, {"gateway2", server1}, {"server1", h.net.Host("gateway1").Addr}, {"server1", h.net.Host("gateway2").Addr}}
	for _, r := range routes {
		h.ip(t, r[0], "route", "add", "blackhole", r[1]+"/32")
	}
	cut := time.Now()
	// The REST streams on server1 end and reconnect to server2; the gRPC
	// streams stay where they are.
	ended := l.recovered(t, cut, "the gateways were cut off from server1", false)
	if ended["gRPC"] != 0 || ended["NDJSON"]+ended["SSE"]+ended["WebSocket"] == 0 {
		t.Errorf("streams ended %v: want no gRPC stream to end (HAProxy still reaches server1), and some REST stream on server1 to", ended)
	}
	l.finish(t)

	// Healed: REST calls reach server1 again.
	for _, r := range routes {
		h.ip(t, r[0], "route", "del", "blackhole", r[1]+"/32")
	}
	healed := time.Now()
	c := h.calls(t)
	if took, ok := poll.Until(20*time.Second, func() bool {
		return h.delta(t, func() { c.restBatch(t.Context(), 20) })["server1"] > 0
	}); !ok {
		t.Errorf("no REST call reached server1 %v after the partition healed", took)
	}
	t.Logf("partition healed: REST calls reached server1 again after %v (%d OK, %d failed %v)", time.Since(healed).Round(time.Millisecond), c.ok, c.failed, c.errs)
	if c.failed != 0 {
		t.Errorf("%d REST calls failed after the partition healed: %v", c.failed, c.errs)
	}
}

// TestImpairedLink: server1's link delays every frame and drops a share
// of them, both ways, as a long and lossy path would. TCP carries on: no
// call fails and no stream ends; the test logs what it costs in latency.
func TestImpairedLink(t *testing.T) {
	t.Parallel() // on hosts of its own: see onHosts
	h := start(t, onHosts("server1", "server2")).hosts
	l := startNetLoad(t, h)
	const (
		delay       = 40 * time.Millisecond
		lossPercent = 3
	)
	im, err := h.net.Impair("server1", delay, lossPercent)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := im.Close(); err != nil {
			t.Errorf("end the impairment: %v", err)
		}
	})
	start := time.Now()
	// Enough calls and codenames across the link for a lost keepalive
	// probe or retransmission to matter if it were going to.
	h.awaitCalls(t, 1000, "server1")
	if d, ok := poll.Until(30*time.Second, func() bool {
		for _, f := range l.streams {
			if f.got.Load() < 100 || !f.receivedSince(start.Add(5*time.Second)) {
				return false
			}
		}
		return true
	}); !ok {
		t.Errorf("the streams did not go on receiving for 5 s over the impaired link (%v)", d)
	}
	what := fmt.Sprintf("server1's link began to delay frames %v each way and drop %d%%", delay, lossPercent)
	l.checkStreams(t, start, what, false)
	for _, f := range l.streams {
		if n := len(f.endsSince(start)); n != 0 {
			t.Errorf("a %s stream ended on the impaired link, want none to", f.kind)
		}
	}
	l.finish(t)
	// A gRPC call to server1 crosses the link there and back.
	if l.grpc.slowest < 2*delay {
		t.Errorf("the slowest gRPC call took %v: the link's delay (%v each way) did not show", l.grpc.slowest, delay)
	}
}

// TestGatewayHostVanishes: under load, the host of one gateway vanishes.
// REST calls lose nothing; the REST streams it carried end within
// streamEndLimit and reconnect through the other gateway. HAProxy cannot
// write a last error line into a response whose gateway vanished: the
// client sees the response cut off (a WebSocket closes with 1006), which
// the page and a client that reconnects on a dropped connection act on.
//
// It found that HAProxy's connections to a vanished host sometimes hung
// (data in flight stops TCP keepalive's probes) because HAProxy 2.6 had
// silently ignored `tcp-ut` on servers named by DNS (haproxy.cfg).
func TestGatewayHostVanishes(t *testing.T) {
	t.Parallel() // on hosts of its own: see onHosts
	h := start(t, onHosts("server1", "server2")).hosts
	l := startNetLoad(t, h)
	h.ip(t, "gateway1", "link", "set", "eth0", "down")
	gone := time.Now()
	ended := l.recovered(t, gone, "gateway1's host vanished", true)
	if ended["gRPC"] != 0 || ended["NDJSON"]+ended["SSE"]+ended["WebSocket"] == 0 {
		t.Errorf("streams ended %v: want no gRPC stream to end, and some REST stream on gateway1 to", ended)
	}
	h.ip(t, "gateway1", "link", "set", "eth0", "up")
	back := time.Now()
	if took, ok := poll.Until(20*time.Second, func() bool {
		return h.checkStatus(t, "be_rest", "gw1") == "L7OK" && h.checkStatus(t, "be_rest", "gw2") == "L7OK"
	}); !ok {
		t.Errorf("HAProxy's checks of the gateways: gw1 %q, gw2 %q %v after gateway1's host came back, want both L7OK",
			h.checkStatus(t, "be_rest", "gw1"), h.checkStatus(t, "be_rest", "gw2"), took)
	}
	t.Logf("gateway1's host came back: HAProxy checks both gateways UP after %v", time.Since(back).Round(time.Millisecond))
	l.finish(t)
}

// awaitCalls waits until each of servers has finished n more calls.
func (h *hostNet) awaitCalls(t *testing.T, n float64, servers ...string) {
	t.Helper()
	before := h.handled(t)
	if d, ok := poll.Until(30*time.Second, func() bool {
		now := h.handled(t)
		for _, s := range servers {
			if now[s]-before[s] < n {
				return false
			}
		}
		return true
	}); !ok {
		t.Fatalf("%v did not finish %v calls each in %v (before %v, now %v)", servers, n, d, before, h.handled(t))
	}
}
