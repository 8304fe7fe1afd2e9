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
	"github.com/codename-gateway/codename-gateway/internal/stack"
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

// classify says how a stream of kind ended, and whether that is actionable.
func classify(kind string, err error) (string, bool) {
	var re *restEnd
	switch {
	case kind == "gRPC":
		st := status.Convert(err)
		return st.Code().String() + ": " + st.Message(), st.Code() == codes.Unavailable ||
			st.Code() == codes.Internal && strings.Contains(st.Message(), "without sending trailers")
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
func follow(ctx context.Context, wg *sync.WaitGroup, kind string, open streamOpener) *follower {
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
			how, ok := classify(kind, err)
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

// openers are the four kinds of codename stream, opened through the edge
// of s in cleartext.
func openers(t *testing.T, s *system) map[string]streamOpener {
	addr := s.cfg.HTTPAddr
	client := s.grpcClient(t, false)
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
			conn, resp, err := dialNDJSONStream(addr, `{"category":"science"}`)
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
			conn, r, err := dialSSEStream(addr, "animals")
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
			ws, _, err := websocket.Dial(dialCtx, wsURL(s, false), nil)
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

// followAll starts n followers of each kind through s's edge.
func followAll(t *testing.T, ctx context.Context, s *system, n int) ([]*follower, *sync.WaitGroup) {
	var wg sync.WaitGroup
	var fs []*follower
	for kind, open := range openers(t, s) {
		for range n {
			fs = append(fs, follow(ctx, &wg, kind, open))
		}
	}
	return fs, &wg
}

// awaitReceiving waits until every follower has received a codename after
// since.
func awaitReceiving(t *testing.T, fs []*follower, since time.Time, limit time.Duration) {
	t.Helper()
	if d, ok := stack.PollUntil(limit, func() bool {
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

// TestHostVanishes: under load, the host of one server vanishes without a
// word (its link goes down). Unary calls lose nothing; every stream that
// was on it ends within streamEndLimit with a status its client acts on,
// and reconnects to the other server; when the host is back, it takes
// traffic again within seconds.
func TestHostVanishes(t *testing.T) {
	h := startHosts(t, []string{"server1", "server2"})
	s := h.sys
	ctx, stop := context.WithCancel(t.Context())
	defer stop()

	grpcLoad := grpcUnaryLoad(ctx, codenamev1.NewCodenameCreatorClient(s.grpcConn(t, false)), 4)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	restLoad := restUnaryLoad(ctx, &http.Client{Transport: tr}, s.httpURL("/v1/codename"), 4)
	fs, followers := followAll(t, ctx, s, 4)
	awaitReceiving(t, fs, time.Now(), 15*time.Second)
	// The calls the loads make in a second.
	if d := h.delta(t, func() { time.Sleep(time.Second) }); d["server1"] == 0 || d["server2"] == 0 {
		t.Fatalf("before the failure, calls landed %v, want some on each server", d)
	}

	h.ip(t, "server1", "link", "set", "eth0", "down")
	gone := time.Now()
	// Every stream receives again: those on server2 never stopped, those
	// on server1 ended and reconnected to server2.
	// (What a stream on server1 received after a second was sent before
	// its host vanished: the stream interval is 100 ms.)
	awaitReceiving(t, fs, gone.Add(time.Second), streamEndLimit+5*time.Second)
	recovered := time.Since(gone)
	ended := map[string]int{}
	var slowest time.Duration
	for _, f := range fs {
		for _, e := range f.endsSince(gone) {
			ended[f.kind]++
			after := e.at.Sub(gone)
			slowest = max(slowest, after)
			if after > streamEndLimit || !e.actionable {
				t.Errorf("%s stream ended %v after the host vanished with %s; want within %v, with a status to reconnect on", f.kind, after.Round(time.Millisecond), e.how, streamEndLimit)
			}
		}
		for _, e := range f.refusedSince(gone) {
			t.Errorf("%s stream could not be opened %v after the host vanished: %s", f.kind, e.at.Sub(gone).Round(time.Millisecond), e.how)
		}
	}
	t.Logf("server1's host vanished: streams ended %v (per kind), the slowest %v after; all receiving again after %v",
		ended, slowest.Round(time.Millisecond), recovered.Round(time.Millisecond))
	if ended["gRPC"] == 0 || ended["NDJSON"]+ended["SSE"]+ended["WebSocket"] == 0 {
		t.Errorf("streams ended %v: want some gRPC and some REST streams on the vanished host to end", ended)
	}

	h.ip(t, "server1", "link", "set", "eth0", "up")
	back := time.Now()
	took, ok := stack.PollUntil(20*time.Second, func() bool {
		return h.delta(t, func() { time.Sleep(200 * time.Millisecond) })["server1"] > 0
	})
	if !ok {
		t.Errorf("server1 took no call %v after its host came back", took)
	}
	t.Logf("server1's host came back: it took calls again after %v", time.Since(back).Round(time.Millisecond))

	stop()
	followers.Wait()
	grpcLoad.check(t, "gRPC unary through HAProxy")
	restLoad.check(t, "REST unary through HAProxy and the gateways")
}
