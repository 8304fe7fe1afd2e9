package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc"

	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// Issue 15 points 4 and 5: the memory one held stream costs each Go
// process, per transport, in both gateway modes, through HAProxy as a
// client would hold it. gRPC bidi goes straight to the server; the
// browsers' three go through the gateway.
var (
	heldTransports = []string{"gRPC bidi", "NDJSON", "SSE", "WebSocket"}
	gatewayModes   = []string{stack.Separate, stack.Colocated}
)

// figHeldIn names the figure of the memory a held stream of transport
// costs process (gateway or server) of a stack in mode.
func figHeldIn(mode, process, transport string) string {
	if mode == stack.Colocated {
		return fmt.Sprintf("Co-located process (server with the gateway inside) memory per held %s stream", transport)
	}
	return fmt.Sprintf("%s memory per held %s stream (separate)", strings.ToUpper(process[:1])+process[1:], transport)
}

// The targets: 16 KB in the gateway for a browser transport, 12
// KB in the server. A co-located process holds both halves of a browser's
// stream, so its target is their sum (derived here, not the issue's own
// number); a gRPC stream never touches the gateway, so 12 KB.
const (
	heldGatewayTarget = 16
	heldServerTarget  = 12
)

// heldTransportSpecs are the rows of the held-transport figures, in table
// order: separate (gateway, then server), then co-located.
func heldTransportSpecs() []figure {
	kb := func(name string, limit float64) figure {
		return figure{name: name, unit: " KB", digits: 1, target: atMost(limit)}
	}
	var specs []figure
	for _, t := range heldTransports[1:] {
		specs = append(specs, kb(figHeldIn(stack.Separate, procGateway, t), heldGatewayTarget))
	}
	for _, t := range heldTransports {
		specs = append(specs, kb(figHeldIn(stack.Separate, procServer, t), heldServerTarget))
	}
	for i, t := range heldTransports {
		limit := float64(heldServerTarget)
		if i > 0 {
			limit += heldGatewayTarget
		}
		specs = append(specs, kb(figHeldIn(stack.Colocated, procServer, t), limit))
	}
	return specs
}

// goMem is what one Go process holds at a moment, from its own metrics.
type goMem struct{ heap, stacks, goroutines float64 }

func readGoMem(ctx context.Context, adminAddr string) (goMem, error) {
	m, err := scrape(ctx, adminAddr)
	if err != nil {
		return goMem{}, err
	}
	g := goMem{m.sum("go_memstats_heap_alloc_bytes", nil), m.sum("go_memstats_stack_inuse_bytes", nil), m.sum("go_goroutines", nil)}
	if g.heap == 0 || g.goroutines == 0 {
		return goMem{}, fmt.Errorf("%s: no go_memstats_heap_alloc_bytes or go_goroutines", adminAddr)
	}
	return g, nil
}

// perStream is what n held streams added to a process, per stream: bytes
// (heap in use plus goroutine stacks), of which stacks, and goroutines.
type perStream struct{ bytes, stacks, goroutines float64 }

func (after goMem) minus(before goMem, n int) perStream {
	per := float64(n)
	return perStream{
		bytes:      (after.heap + after.stacks - before.heap - before.stacks) / per,
		stacks:     (after.stacks - before.stacks) / per,
		goroutines: (after.goroutines - before.goroutines) / per,
	}
}

// transportSample is one round of one transport on a fresh stack of one
// mode: per stream, the server's (co-located: the one process's) and the
// gateway's (separate only).
type transportSample struct{ server, gateway perStream }

// measureHeldTransports holds n streams of each transport through HAProxy,
// on a fresh stack of each mode each time (a process keeps the heap it
// once grew, so a stack that held one transport would flatter the next),
// in rounds rounds, the modes and transports alternating within a round.
func measureHeldTransports(ctx context.Context, start starter, n, rounds int) ([]figure, []string, error) {
	samples := map[string][]transportSample{}
	key := func(mode, transport string) string { return mode + "/" + transport }
	for r := range rounds {
		for _, mode := range gatewayModes {
			for _, t := range heldTransports {
				env := []string{heldStreamEnv, stack.GatewayModeEnv + "=" + mode, heldGOGC}
				s, err := onFreshStack(ctx, start, env, func(sys *system) (transportSample, error) {
					return holdTransport(ctx, sys, t, n)
				})
				if err != nil {
					return nil, nil, fmt.Errorf("%s streams, %s (round %d): %w", t, mode, r+1, err)
				}
				samples[key(mode, t)] = append(samples[key(mode, t)], s)
			}
		}
	}
	kb := func(ss []transportSample, pick func(transportSample) float64) []float64 {
		return each(ss, func(s transportSample) float64 { return pick(s) / 1024 })
	}
	var figs []figure
	details := []string{fmt.Sprintf("Held streams per transport: %d streams of one transport through HAProxy's cleartext listener (gRPC bidi and NDJSON/SSE over h2c, %d streams a connection; WebSocket over HTTP/1.1, a connection each), on a fresh stack (CODENAME_STREAM_INTERVAL=1h) for each mode and transport, %d rounds; each stream has had its first codename, then idles. Memory is the Go runtime's allocated heap plus goroutine stacks, from each process's own metrics, read 1 s before opening and 1 s after all are open, per stream. These stacks run with %s: a process cannot be asked to collect from outside, and so the heap it reports stays within about 1 %% of what is live (server BenchmarkHeldStream collects in process instead).",
		n, streamsPerConn, rounds, heldGOGC)}
	for _, mode := range gatewayModes {
		for _, t := range heldTransports {
			ss := samples[key(mode, t)]
			srv := func(s transportSample) perStream { return s.server }
			gw := func(s transportSample) perStream { return s.gateway }
			note := func(p func(transportSample) perStream) string {
				return fmt.Sprintf("stacks %.1f KB, %.1f goroutines",
					median(kb(ss, func(s transportSample) float64 { return p(s).stacks })),
					median(each(ss, func(s transportSample) float64 { return p(s).goroutines })))
			}
			if mode == stack.Separate && t != heldTransports[0] {
				figs = append(figs, measured(figHeldIn(mode, procGateway, t), kb(ss, func(s transportSample) float64 { return s.gateway.bytes }), note(gw)))
			}
			figs = append(figs, measured(figHeldIn(mode, procServer, t), kb(ss, func(s transportSample) float64 { return s.server.bytes }), note(srv)))
		}
	}
	return figs, details, nil
}

// holdTransport opens n streams of transport through sys's HAProxy, waits
// for each one's first codename, checks that the server holds them all,
// and returns what they cost each Go process.
func holdTransport(ctx context.Context, sys *system, transport string, n int) (transportSample, error) {
	settle(ctx, settleHeld)
	read := func() (srv, gw goMem, err error) {
		if srv, err = readGoMem(ctx, sys.serverAdminAddr()); err != nil || sys.colocated {
			return srv, gw, err
		}
		gw, err = readGoMem(ctx, sys.restAdminAddr())
		return srv, gw, err
	}
	srv0, gw0, err := read()
	if err != nil {
		return transportSample{}, err
	}
	h := newHolder(sys.proxyAddr())
	defer h.close()
	if err := h.open(ctx, transport, n); err != nil {
		return transportSample{}, err
	}
	settle(ctx, settleHeld)
	srv1, gw1, err := read()
	if err != nil {
		return transportSample{}, err
	}
	m, err := scrape(ctx, sys.serverAdminAddr())
	if err != nil {
		return transportSample{}, err
	}
	// The server's own count proves that every stream reached it and
	// still lives.
	if got := m.sum("codename_open_streams", nil); got != float64(n) {
		return transportSample{}, fmt.Errorf("the server holds %v streams, the client %d", got, n)
	}
	s := transportSample{server: srv1.minus(srv0, n)}
	if !sys.colocated {
		s.gateway = gw1.minus(gw0, n)
	}
	return s, nil
}

// heldGOGC makes the stacks of this step collect garbage whenever their
// heap grows by 1 %: no process here can be asked to collect, and at the
// default 100 % the heap read from outside carries anything up to the live
// heap again in garbage, which no number of streams averages away. So the
// heap read is within about 1 % of what is live, as a collection would
// leave it.
const heldGOGC = "GOGC=1"

// settleHeld is how long a stack is left alone before its memory is read:
// long enough for connections and goroutines of the previous step to end.
const settleHeld = time.Second

// holder opens and holds streams through one HAProxy address, and ends
// them all at close.
type holder struct {
	addr string
	ctx  context.Context
	// end cancels every stream; closers release what each one holds.
	end      context.CancelFunc
	mu       sync.Mutex
	closers  []func()
	grpcs    []*grpc.ClientConn
	h2c      *http.Client
	netConns []net.Conn
}

func newHolder(addr string) *holder {
	ctx, end := context.WithCancel(context.Background())
	h := &holder{addr: addr, ctx: ctx, end: end}
	// The transport opens another connection when one has as many streams
	// as HAProxy allows. Connections are tracked so close can end them.
	t := h2cTransport()
	t.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
		c, err := new(net.Dialer).DialContext(ctx, network, a)
		if err == nil {
			h.mu.Lock()
			h.netConns = append(h.netConns, c)
			h.mu.Unlock()
		}
		return c, err
	}
	h.h2c = &http.Client{Transport: t}
	return h
}

func (h *holder) onClose(f func()) {
	h.mu.Lock()
	h.closers = append(h.closers, f)
	h.mu.Unlock()
}

// open opens n streams of transport, a few at a time, and returns once
// each has delivered its first codename; the first failure fails it.
func (h *holder) open(ctx context.Context, transport string, n int) error {
	var openOne func(ctx context.Context, i int) error
	const first = `{"category":"space"}`
	switch transport {
	case "gRPC bidi":
		for range (n + streamsPerConn - 1) / streamsPerConn {
			conn, err := dial(h.addr)
			if err != nil {
				return err
			}
			h.grpcs = append(h.grpcs, conn)
		}
		openOne = func(ctx context.Context, i int) error {
			stream, err := openCodenames(ctx, h.grpcs[i/streamsPerConn], "space")
			if err != nil {
				return err
			}
			_, err = stream.Recv()
			return err
		}
	case "NDJSON":
		openOne = func(ctx context.Context, _ int) error {
			pr, pw := io.Pipe()
			h.onClose(func() { pw.Close() })
			go func() { _, _ = io.WriteString(pw, first+"\n") }()
			return h.firstLine(ctx, http.MethodPost, "/v1/codenames:stream", pr, `{"result"`)
		}
	case "SSE":
		openOne = func(ctx context.Context, _ int) error {
			return h.firstLine(ctx, http.MethodGet, "/v1/codenames:stream?category=space", nil, `data: {"result"`)
		}
	case "WebSocket":
		openOne = func(ctx context.Context, _ int) error {
			ws, _, err := websocket.Dial(ctx, "ws://"+h.addr+"/v1/codenames:stream", nil)
			if err != nil {
				return err
			}
			h.onClose(func() { ws.CloseNow() })
			if err := ws.Write(ctx, websocket.MessageText, []byte(first)); err != nil {
				return err
			}
			_, _, err = ws.Read(ctx)
			return err
		}
	default:
		return fmt.Errorf("unknown transport %q", transport)
	}
	// The streams live in h.ctx; ctx only bounds the opening.
	stop := context.AfterFunc(ctx, h.end)
	defer stop()
	// A few at a time: all at once would measure HAProxy's and the
	// client's bursts, not what a held stream keeps.
	var (
		wg       sync.WaitGroup
		slots    = make(chan struct{}, 32)
		errOnce  sync.Once
		firstErr error
	)
	for i := range n {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := openOne(h.ctx, i); err != nil {
				errOnce.Do(func() { firstErr = fmt.Errorf("%s stream %d: %w", transport, i+1, err) })
				h.end()
			}
		})
	}
	wg.Wait()
	return firstErr
}

// firstLine sends a streaming request and reads its answer up to a line
// that starts with want; the body stays open, so the stream stays held.
func (h *holder) firstLine(ctx context.Context, method, path string, body io.Reader, want string) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+h.addr+path, body)
	if err != nil {
		return err
	}
	if method == http.MethodGet {
		req.Header.Set("Accept", "text/event-stream")
	}
	resp, err := h.h2c.Do(req)
	if err != nil {
		return err
	}
	h.onClose(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %s %s", method, path, resp.Status, b)
	}
	r := bufio.NewReader(resp.Body)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return fmt.Errorf("%s %s: before a codename: %w", method, path, err)
		}
		if bytes.HasPrefix(line, []byte(want)) {
			return nil
		}
	}
}

// close ends every stream and connection the holder opened.
func (h *holder) close() {
	h.end()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range h.closers {
		f()
	}
	for _, c := range h.grpcs {
		c.Close()
	}
	for _, c := range h.netConns {
		c.Close()
	}
}
