package e2e

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/promtest"
)

// statsRows reads HAProxy's stats page as CSV: one map of column name to
// value per proxy and server line.
func (s *system) statsRows(t *testing.T) []map[string]string {
	t.Helper()
	body := s.get(t, "http://"+s.cfg.StatsAddr+"/stats;csv")
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "# "))).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("stats CSV: %v\n%s", err, body)
	}
	var out []map[string]string
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, name := range rows[0] {
			if i < len(r) {
				m[name] = r[i]
			}
		}
		out = append(out, m)
	}
	return out
}

// backendSessions returns how many requests each HAProxy backend has been
// given (the stats page's stot), to tell whether a request reached one.
func (s *system) backendSessions(t *testing.T) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, r := range s.statsRows(t) {
		if r["svname"] == "BACKEND" && strings.HasPrefix(r["pxname"], "be_") {
			n, _ := strconv.Atoi(r["stot"])
			got[r["pxname"]] = n
		}
	}
	return got
}

// get fetches url and returns its body, failing the test on any error.
func (s *system) get(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metricValue sums the samples of the counter or gauge name whose labels
// include labels (nil: all), in one scrape. A series that is not there
// fails the test: it means the process, the name or the labels are not
// what the test assumes, not that the value is zero.
func metricValue(t testing.TB, text, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := promtest.Sum(text, name, labels)
	if !ok {
		t.Errorf("no sample of %s%v in the scrape", name, labels)
	}
	return v
}

// countSoFar is metricValue for a labelled counter that a process creates
// at its first increment (gRPC client metrics, per-method request
// counts): before that, it has counted zero.
func countSoFar(text, name string, labels map[string]string) float64 {
	v, _ := promtest.Sum(text, name, labels)
	return v
}

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

// grpcUnaryLoad calls GetCodename through HAProxy in a loop.
func grpcUnaryLoad(ctx context.Context, client codenamev1.CodenameCreatorClient, workers int) *load {
	l := &load{workers: workers}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				start := time.Now()
				callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				_, err := client.GetCodename(callCtx, &codenamev1.NameRequest{Category: "science"})
				cancel()
				l.record(err, time.Since(start))
			}
		}()
	}
	return l
}

// restUnaryLoad calls GET /v1/codename through HAProxy in a loop.
func restUnaryLoad(ctx context.Context, c *http.Client, url string, workers int) *load {
	l := &load{workers: workers}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil {
				start := time.Now()
				callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				req, _ := http.NewRequestWithContext(callCtx, "GET", url, nil)
				resp, err := c.Do(req)
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("%s: %s", resp.Status, b)
					}
				}
				cancel()
				l.record(err, time.Since(start))
			}
		}()
	}
	return l
}

// wait waits for the workers and fails the test if any call failed.
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
