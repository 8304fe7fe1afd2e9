package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/promtest"
)

// metrics is one scrape of a Prometheus text endpoint.
type metrics string

// scrape reads the Prometheus metrics that a process serves over HTTP/1.1
// at addr: a server's or a gateway's admin listener, or HAProxy's stats.
func scrape(ctx context.Context, addr string) (metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("scrape %s: %s", addr, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("scrape %s: %w", addr, err)
	}
	return metrics(b), nil
}

// sum adds the samples of metric name whose labels include labels (nil:
// all); a series not there yet has counted nothing.
func (m metrics) sum(name string, labels map[string]string) float64 {
	v, _ := promtest.Sum(string(m), name, labels)
	return v
}

// handled counts the calls of a gRPC method the server finished, those that
// ended OK and those that did not: h2load sees only HTTP statuses, and a
// gRPC error travels with status 200, so this is where an error shows.
func (m metrics) handled(method string) (ok, failed float64) {
	const name = "grpc_server_handled_total"
	all := m.sum(name, map[string]string{"grpc_method": method})
	ok = m.sum(name, map[string]string{"grpc_method": method, "grpc_code": "OK"})
	return ok, all - ok
}
