package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// load runs unary calls from workers goroutines until ctx ends and counts
// the outcomes; the first few errors are kept to explain a failure.
type load struct {
	ok, failed atomic.Int64
	// cut counts the failed calls that a server died in the middle of
	// answering (see checkAfterKill).
	cut     atomic.Int64
	workers int
	mu      sync.Mutex
	errs    []string
	slowest time.Duration // the longest call
	wg      sync.WaitGroup
}

func (l *load) record(err error, took time.Duration) {
	l.mu.Lock()
	l.slowest = max(l.slowest, took)
	l.mu.Unlock()
	if err == nil {
		l.ok.Add(1)
		return
	}
	l.failed.Add(1)
	if status.Code(err) == codes.Internal && strings.Contains(err.Error(), "without sending trailers") {
		l.cut.Add(1)
	}
	l.mu.Lock()
	if len(l.errs) < 5 {
		l.errs = append(l.errs, err.Error())
	}
	l.mu.Unlock()
}

// runLoad runs call from workers goroutines until ctx ends, each call
// with 10 s of its own, and counts the outcomes.
func runLoad(ctx context.Context, workers int, call func(ctx context.Context) error) *load {
	l := &load{workers: workers}
	for range workers {
		l.wg.Go(func() {
			for ctx.Err() == nil {
				start := time.Now()
				callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				err := call(callCtx)
				cancel()
				l.record(err, time.Since(start))
			}
		})
	}
	return l
}

// grpcUnaryLoad calls GetCodename through HAProxy in a loop.
func grpcUnaryLoad(ctx context.Context, client codenamev1.CodenameCreatorClient, workers int) *load {
	return runLoad(ctx, workers, func(ctx context.Context) error {
		_, err := client.GetCodename(ctx, &codenamev1.NameRequest{Category: "science"})
		return err
	})
}

// restUnaryLoad calls GET /v1/codename through HAProxy in a loop.
func restUnaryLoad(ctx context.Context, c *http.Client, url string, workers int) *load {
	return runLoad(ctx, workers, func(ctx context.Context) error { return getOK(ctx, c, url) })
}

// unaryLoads runs workers unary gRPC callers through HAProxy (over TLS if
// secure) and as many REST callers of path over tp, until ctx ends.
func unaryLoads(t testing.TB, ctx context.Context, s *system, secure bool, tp transport, path string, workers int) (grpcLoad, restLoad *load) {
	return grpcUnaryLoad(ctx, s.grpcClient(t, secure), workers), restUnaryLoad(ctx, tp.client(t, s), tp.url(s, path), workers)
}

// getOK sends GET url with c and fails unless the answer is a 200.
func getOK(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	return nil
}

// okPast returns nil once each of loads has had more than n calls
// succeed, for a poll.For that waits for some load.
func okPast(n int64, loads ...*load) error {
	for i, l := range loads {
		if got := l.ok.Load(); got <= n {
			return fmt.Errorf("load %d: %d calls succeeded, want more than %d", i+1, got, n)
		}
	}
	return nil
}

// check waits for the workers and fails the test if any call failed.
func (l *load) check(t *testing.T, name string) {
	t.Helper()
	l.wg.Wait()
	t.Logf("%s: %d calls succeeded, %d failed; the slowest took %v", name, l.ok.Load(), l.failed.Load(), l.slowest.Round(time.Millisecond))
	if l.failed.Load() > 0 {
		t.Errorf("%s: %d of %d calls failed, want 0; first errors: %v", name, l.failed.Load(), l.failed.Load()+l.ok.Load(), l.errs)
	}
	if l.ok.Load() == 0 {
		t.Errorf("%s: no call succeeded", name)
	}
}

// checkAfterKill is check for a load during which a server was killed
// (SIGKILL). A call whose answer the dying server had begun to send cannot
// be retried by HAProxy, since part of the answer has gone on to the
// client: the client sees INTERNAL "server closed the stream without
// sending trailers" (DESIGN.md: treat it as retryable). At most one call
// per worker can be caught that way, at the instant of the kill; every
// other call must succeed.
func (l *load) checkAfterKill(t *testing.T, name string) {
	t.Helper()
	l.wg.Wait()
	failed, cut := l.failed.Load(), l.cut.Load()
	t.Logf("%s: %d calls succeeded, %d failed (%d cut off mid-answer)", name, l.ok.Load(), failed, cut)
	if failed > cut || cut > int64(l.workers) {
		t.Errorf("%s: %d of %d calls failed, %d of them cut off mid-answer; want no other failure, and at most %d (one per worker) cut off; first errors: %v",
			name, failed, failed+l.ok.Load(), cut, l.workers, l.errs)
	}
	if l.ok.Load() == 0 {
		t.Errorf("%s: no call succeeded", name)
	}
}
