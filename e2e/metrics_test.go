package e2e

// The one way the tests read a metric: a scrape of a process's
// Prometheus page, summed by promtest.Sum.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/promtest"
)

// metricValue sums the samples of the counter or gauge name whose labels
// include labels (nil: all), in one scrape. A series that is not there
// fails the test: it means the process, the name or the labels are not
// what the test assumes, not that the value is zero. (A labelled counter
// that a process creates at its first increment, such as gRPC's client
// metrics or a per-method count, is read with promtest.Sum itself, whose
// "no sample" is then a count of zero so far.)
func metricValue(t testing.TB, text, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := promtest.Sum(text, name, labels)
	if !ok {
		t.Errorf("no sample of %s%v in the scrape", name, labels)
	}
	return v
}

// answers returns nil if GET url answers with status code.
func answers(url string, code int) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != code {
		return fmt.Errorf("GET %s: %s, want %d", url, resp.Status, code)
	}
	return nil
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

// metricsProbe scrapes one process's Prometheus page (a server's at
// http://<grpc addr>/metrics, a gateway's at http://<gateway addr>/metrics)
// over a connection of its own that stays open, so that polling it adds no
// goroutines of its own to the counts it reads.
type metricsProbe struct {
	t   testing.TB
	url string
	c   *http.Client
}

func newMetricsProbe(t testing.TB, addr string) *metricsProbe {
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	return &metricsProbe{t: t, url: "http://" + addr + "/metrics", c: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
}

func (p *metricsProbe) text() (string, error) {
	resp, err := p.c.Get(p.url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", p.url, resp.Status)
	}
	return string(b), err
}

// value is the sum of the samples of the metric name in one
// scrape; a failed scrape is -1, which no gauge or counter here can be.
func (p *metricsProbe) value(name string) float64 {
	text, err := p.text()
	if err != nil {
		text, err = p.text() // once more: a busy machine may drop one
	}
	if err != nil {
		return -1
	}
	return metricValue(p.t, text, name, nil)
}

// gauge returns a check for poll.For that passes once the metric name
// (summed, as value reads it) is want.
func (p *metricsProbe) gauge(name string, want float64) func() error {
	return func() error {
		if got := p.value(name); got != want {
			return fmt.Errorf("%s is %v, want %v", name, got, want)
		}
		return nil
	}
}
